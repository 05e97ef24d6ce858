#!/usr/bin/env bash
# nvcc_spill_check.sh — CMake's compiler launcher for CUDA sources (CMAKE_CUDA_COMPILER_LAUNCHER).
# Runs the nvcc command it is given (built with -Xptxas -v, so ptxas reports registers, stack and
# spills of every kernel for every architecture), keeps the report next to the object
# (<object>.ptxas.txt) and fails the compile if any kernel spills registers to local memory.
# LUMEN_ALLOW_SPILLS=1 reports without failing.
set -u
out=""
prev=""
for a in "$@"; do
  if [ "$prev" = "-o" ]; then out="$a"; fi
  prev="$a"
done
log=$(mktemp)
"$@" 2>"$log"
rc=$?
# pass compiler diagnostics through, not the ptxas info lines
grep -v -E "^ptxas info|^ +[0-9]+ bytes stack frame" "$log" >&2 || true
if [ -n "$out" ]; then cp "$log" "$out.ptxas.txt"; fi
if [ $rc -ne 0 ]; then rm -f "$log"; exit $rc; fi
# "ptxas info : Compiling entry function '_Z...' for 'sm_86'" then
# "ptxas info : ... N bytes stack frame, N bytes spill stores, N bytes spill loads"
spills=$(awk '
  /Compiling entry function/ { arch = $NF }
  /Function properties for/ { fn = $NF }
  /bytes spill stores/ { for (i = 1; i <= NF; i++) if ($i == "spill" && $(i+1) == "stores,") st = $(i-2);
                          for (i = 1; i <= NF; i++) if ($i == "spill" && $(i+1) == "loads") ld = $(i-2);
                          if (st + 0 > 0 || ld + 0 > 0) printf "%s %s: %s bytes spill stores, %s bytes spill loads\n", arch, fn, st, ld }
' "$log")
rm -f "$log"
if [ -n "$spills" ]; then
  echo "nvcc_spill_check: register spills in ${out:-this object}:" >&2
  echo "$spills" | (command -v c++filt >/dev/null && c++filt || cat) >&2
  if [ "${LUMEN_ALLOW_SPILLS:-0}" != "1" ]; then exit 1; fi
fi
exit 0
