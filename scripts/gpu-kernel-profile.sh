#!/usr/bin/env bash
# Run ON the GPU machine after scripts/gpu-test.sh built build-gpu: where a GPT-2 124M training step's
# GPU time goes. Nsight Compute times every kernel of a few steps (after the first, warm-up steps are
# skipped by launch count) and the kernels are summed by name, largest first, next to the step's wall time.
# Usage: scripts/gpu-kernel-profile.sh [SKIP_LAUNCHES] [LAUNCHES] [extra overrides...]
set -euo pipefail
cd "$(dirname "$0")/.."
SKIP=${1:-4000}
COUNT=${2:-4000}
shift 2 || true
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
rm -rf /tmp/gpt2-profile
ncu --clock-control none --metrics gpu__time_duration.sum --csv --launch-skip "$SKIP" --launch-count "$COUNT" \
  build-gpu/moetrain train recipes/gpt2-124m.yaml "data.train=.deps/kjv-gpt2/train_*.bin" \
  "data.val=.deps/kjv-gpt2/val_*.bin" data.tokenizer=.deps/gpt2 train.global_batch=16 train.micro_batch=16 \
  train.steps=12 schedule.warmup_steps=2 train.eval_every=0 train.sample_every=0 checkpoint.every=0 log.every=1 \
  log.progress=plain train.run_dir=/tmp/gpt2-profile "$@" >"$OUT/kernel-profile.csv" 2>"$OUT/kernel-profile.err" || {
  tail -20 "$OUT/kernel-profile.err"
  exit 1
}
python3 - "$OUT/kernel-profile.csv" <<'EOF'
import csv, collections, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if len(r) > 10]
head = rows[0]
name_i, unit_i, value_i = head.index("Kernel Name"), head.index("Metric Unit"), head.index("Metric Value")
scale = {"nsecond": 1e-3, "usecond": 1.0, "msecond": 1e3}
total = collections.Counter()
count = collections.Counter()
for r in rows[1:]:
    name = r[name_i].split("(")[0].replace("void ", "")[:90]
    total[name] += float(r[value_i].replace(",", "")) * scale[r[unit_i]]
    count[name] += 1
all_us = sum(total.values())
print(f"{sum(count.values())} kernels, {all_us / 1e3:.2f} ms of GPU time")
print("| kernel | launches | total (ms) | share |")
print("|---|---:|---:|---:|")
for name, us in total.most_common(30):
    print(f"| {name} | {count[name]} | {us / 1e3:.3f} | {100 * us / all_us:.1f}% |")
EOF
