#!/usr/bin/env bash
# install_peer.sh — build the peer engine (llama.cpp, through llama-cpp-python) from source on
# this machine, for side-by-side benchmarks with bench/compare_llamacpp.py.
#
#   bash bench/install_peer.sh cpu      # ggml CPU backend (native instruction set)
#   bash bench/install_peer.sh vulkan   # ggml Vulkan backend (needs libvulkan-dev and glslc)
#   bash bench/install_peer.sh cuda     # ggml CUDA backend (needs the CUDA toolkit)
#
# Each kind gets its own venv, $LUMEN_CACHE/peer-KIND (default ~/.cache/lumen/peer-KIND), so the
# builds do not overwrite each other. Prints the venv's python on stdout. Idempotent: an existing
# build of the pinned version is kept. Building the Vulkan or CUDA backend takes a long time on a
# small machine (tens of minutes on 2 cores: ggml compiles hundreds of shader/kernel variants).
set -euo pipefail
KIND=${1:-cpu}
VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
LUMEN_CACHE=${LUMEN_CACHE:-$HOME/.cache/lumen}
VENV="$LUMEN_CACHE/peer-$KIND"
case "$KIND" in
  cpu) ARGS="-DGGML_NATIVE=on" ;;
  vulkan) ARGS="-DGGML_NATIVE=on -DGGML_VULKAN=on" ;;
  cuda) ARGS="-DGGML_NATIVE=on -DGGML_CUDA=on" ;;
  *) echo "install_peer.sh: unknown kind '$KIND' (cpu, vulkan or cuda)" >&2; exit 2 ;;
esac

if [ -x "$VENV/bin/python" ] &&
   "$VENV/bin/python" -c "import llama_cpp, sys; sys.exit(llama_cpp.__version__ != '$VERSION')" 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi
if [ "$KIND" = vulkan ] && ! dpkg-query -W -f='${Status}' spirv-headers 2>/dev/null | grep -q "install ok installed"; then
  echo "install_peer: installing spirv-headers (ggml's Vulkan build needs it)" >&2
  SUDO=""; if [ "$(id -u)" != 0 ]; then SUDO=sudo; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq spirv-headers >/dev/null
fi
echo "install_peer: building llama-cpp-python $VERSION with $ARGS into $VENV (this takes a while)" >&2
mkdir -p "$LUMEN_CACHE"
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install -q --upgrade pip >&2
SRC=$(mktemp -d)
trap 'rm -rf "$SRC"' EXIT
"$VENV/bin/pip" download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$SRC" >&2
tar -xzf "$SRC"/llama_cpp_python-*.tar.gz -C "$SRC"
TREE=$(echo "$SRC"/llama_cpp_python-*/)
if [ "$KIND" = vulkan ]; then
  # ggml-vulkan configures the validation layer through VK_EXT_layer_settings, which Vulkan
  # headers older than 1.3.272 (Debian 12 ships 1.3.239) lack. Compile that debug-only block
  # only where the headers have the extension; nothing else changes.
  "$VENV/bin/python" - "$TREE/vendor/llama.cpp/ggml/src/ggml-vulkan/ggml-vulkan.cpp" <<'PY' >&2
import re, sys
p = sys.argv[1]
s = open(p).read()
a = s.find("    VkBool32 enable_best_practice = layer_settings;")
b = s.find("\n", s.find("vk::InstanceCreateInfo instance_create_info(", a)) + 1
if a < 0 or b <= 0 or "layer_setting_info" not in s[a:b]:
    sys.exit("install_peer: ggml-vulkan.cpp changed; the layer-settings patch no longer applies")
s = (s[:a] + "#ifdef VK_EXT_layer_settings\n" + s[a:b] + "#else\n"
     "    vk::InstanceCreateInfo instance_create_info(vk::InstanceCreateFlags{}, &app_info, layers, extensions);\n"
     "#endif\n" + s[b:])
open(p, "w").write(s)
print("install_peer: patched ggml-vulkan.cpp for Vulkan headers without VK_EXT_layer_settings")
PY
fi
CMAKE_ARGS="$ARGS" CMAKE_BUILD_PARALLEL_LEVEL=${JOBS:-$(nproc)} \
  "$VENV/bin/pip" install -q --no-cache-dir "$TREE" >&2
echo "$VENV/bin/python"
