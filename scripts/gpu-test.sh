#!/usr/bin/env bash
# Run ON the GPU machine (no network): unpacks the carried .debs, builds with CUDA for sm_90 with
# all cores, runs the whole suite (CUDA cases included), then the op micro-benchmark.
# Output files go to $OUT when set (the device tool returns them). Usage: scripts/gpu-test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD/.deps/root"
mkdir -p "$ROOT"
for f in .deps/debs/*.deb; do dpkg -x "$f" "$ROOT"; done
export CMAKE_PREFIX_PATH="$ROOT/usr:${CMAKE_PREFIX_PATH:-}"
export LD_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu:$ROOT/usr/lib/x86_64-linux-gnu/openblas-pthread:${LD_LIBRARY_PATH:-}"
export CPATH="$ROOT/usr/include:${CPATH:-}"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NCCL_NVLS_ENABLE=0
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
BUILD=build-gpu
cmake -S . -B $BUILD -DCMAKE_BUILD_TYPE=Release -DMT_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90 \
  -DCMAKE_LIBRARY_PATH="$ROOT/usr/lib/x86_64-linux-gnu;$ROOT/usr/lib/x86_64-linux-gnu/openblas-pthread" >"$OUT/cmake.log" 2>&1 \
  || { tail -30 "$OUT/cmake.log"; exit 1; }
cmake --build $BUILD -j 16 2>&1 | grep -E "error|warning|Error" | head -50 || true
cmake --build $BUILD -j 16 >/dev/null
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
ctest --test-dir $BUILD --output-on-failure -j 4 --timeout 300 "$@" 2>&1 | tee "$OUT/ctest.log" | tail -40 || true
if [[ -z "${MT_SKIP_BENCH:-}" ]]; then
  $BUILD/moetrain bench ops 2>&1 | tee "$OUT/bench_ops.md"
fi
