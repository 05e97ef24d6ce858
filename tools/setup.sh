#!/usr/bin/env bash
# setup.sh — install what building and testing lumen needs, skipping what is already there.
#   Debian/Ubuntu packages: compiler, CMake, Criterion (tests), clang (fuzzing), Python venv,
#   Vulkan (loader headers, glslc, Mesa's lavapipe CPU driver so Vulkan tests run without a GPU,
#   and the Khronos validation layer the Vulkan tests run under).
#   A Python venv in $LUMEN_CACHE/venv (default ~/.cache/lumen/venv) for fetching the model.
# Idempotent; safe to run before every build. Needs root or sudo for apt-get.
set -euo pipefail

LUMEN_CACHE=${LUMEN_CACHE:-$HOME/.cache/lumen}
PKGS=(build-essential cmake pkg-config libcriterion-dev clang python3 python3-venv python3-pip
      libvulkan-dev glslc mesa-vulkan-drivers vulkan-validationlayers)

missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# python3-venv may be absent when a non-Debian python3 (pyenv) is first on PATH and works
if [[ " ${missing[*]} " == *" python3-venv "* ]] && python3 -m venv --help >/dev/null 2>&1; then
  missing=("${missing[@]/python3-venv}")
fi
missing=(${missing[@]+"${missing[@]}"})
if ((${#missing[@]})); then
  echo "setup: installing ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ ! -x "$LUMEN_CACHE/venv/bin/python" ]; then
  echo "setup: creating Python venv in $LUMEN_CACHE/venv"
  mkdir -p "$LUMEN_CACHE"
  python3 -m venv "$LUMEN_CACHE/venv"
  "$LUMEN_CACHE/venv/bin/pip" install -q --upgrade pip
fi
