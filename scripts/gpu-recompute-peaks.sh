#!/usr/bin/env bash
# Run ON the GPU machine (carry .deps from scripts/gpu-prep.sh): for the GPT-2 124M and dense-350m shapes
# and each train.recompute mode, `moetrain estimate`'s memory per rank against the peak that `moetrain
# bench step` measures (allocated bytes), with step time; prints one Markdown table (issue 11's check:
# estimate within 15% of the measured peak); each run's log goes into $OUT/recompute-logs.tgz.
# Usage: [STEPS=5] scripts/gpu-recompute-peaks.sh
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
STEPS=${STEPS:-5}
source scripts/gpu-env.sh
[[ -x $BUILD/moetrain ]] || gpu_build moetrain
LOGS=$BUILD/recompute-logs
mkdir -p "$LOGS"
source scripts/bench-fields.sh
gib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 2^30 }'; }
echo "| shape | recompute | estimate GiB | measured peak GiB | estimate / measured | step ms | tokens/s |"
echo "|---|---|---:|---:|---:|---:|---:|"
for shape in gpt2-124m dense-350m; do
  case $shape in
    gpt2-124m) args=(recipes/gpt2-124m.yaml train.global_batch=16 train.micro_batch=16) ;;
    dense-350m) args=(recipes/dense-350m.yaml train.global_batch=8 train.micro_batch=8) ;;
  esac
  for mode in none attention block; do
    log=$LOGS/recompute-$shape-$mode.md
    $BUILD/moetrain estimate "${args[@]}" train.device=cuda train.recompute=$mode >"$log" 2>&1
    total=$(grep "^estimate:" "$log" | sed -n 's/.*total_bytes=\([0-9]*\).*/\1/p')
    $BUILD/moetrain bench step "${args[@]}" train.recompute=$mode --warmup 2 --steps "$STEPS" >>"$log" 2>&1 \
      || { echo "| $shape | $mode | bench step failed: $(tail -1 "$log") |"; continue; }
    peak=$(field "$log" bench-step peak_gib)
    echo "| $shape | $mode | $(gib "$total") | $peak | $(awk -v e="$total" -v p="$peak" 'BEGIN { printf "%.2f", e / 2^30 / p }') |" \
      "$(field "$log" bench-step step_ms) | $(field "$log" bench-step tokens_per_s) |"
  done
done
tar czf "$OUT/recompute-logs.tgz" -C "$LOGS" .  # one file: the device tool brings back at most 8
