#!/usr/bin/env bash
# Run ON the GPU machine (no network): unpacks the carried .debs, builds with CUDA for sm_90 with
# all cores, runs the whole suite (CUDA cases included), then the op micro-benchmark.
# Output files go to $OUT when set (the device tool returns them). Usage: scripts/gpu-test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD/.deps/root"
mkdir -p "$ROOT"
for f in .deps/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
# dpkg -x runs no maintainer scripts: make the links Debian's alternatives would.
LIB="$ROOT/usr/lib/x86_64-linux-gnu"
ln -sf openblas-openmp/libopenblas.so.0 "$LIB/libopenblas.so"
ln -sf openblas-openmp/libopenblas.so.0 "$LIB/libopenblas.so.0"
export CMAKE_PREFIX_PATH="$ROOT/usr:${CMAKE_PREFIX_PATH:-}"
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/openblas-openmp:${LD_LIBRARY_PATH:-}"
export CPATH="$ROOT/usr/include:$ROOT/usr/include/x86_64-linux-gnu/openblas-openmp:${CPATH:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
BUILD=build-gpu
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DMT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu;$ROOT/usr/lib/x86_64-linux-gnu/openblas-openmp" >"$OUT/cmake.log" 2>&1 \
  || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build $BUILD -j 16 -- -k >"$OUT/build.log" 2>&1 || { grep -E "error|Error" "$OUT/build.log" | head -40; exit 1; }
grep -E "warning" "$OUT/build.log" | head -20 || true
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
ctest --test-dir $BUILD --output-on-failure -j 4 --timeout 300 "$@" 2>&1 | tee "$OUT/ctest.log" | tail -40 || true
if [[ -z "${MT_SKIP_BENCH:-}" ]]; then
  $BUILD/moetrain bench ops 2>&1 | tee "$OUT/bench_ops.md"
fi
