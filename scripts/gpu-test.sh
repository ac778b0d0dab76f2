#!/usr/bin/env bash
# Run ON the GPU machine (no network): unpacks the carried .debs, builds with CUDA for sm_90 with
# all cores, runs the whole suite (CUDA cases included), then the op micro-benchmark.
# Output files go to $OUT when set (the device tool returns them). Usage: scripts/gpu-test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
source scripts/gpu-env.sh
gpu_build
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
ctest --test-dir $BUILD --output-on-failure -j 4 --timeout 300 "$@" 2>&1 | tee "$OUT/ctest.log" | tail -40 || true
if [[ -z "${MT_SKIP_BENCH:-}" ]]; then
  $BUILD/moetrain bench ops 2>&1 | tee "$OUT/bench_ops.md"
fi
