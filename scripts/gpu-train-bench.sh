#!/usr/bin/env bash
# Run ON the GPU machine after scripts/gpu-test.sh built build-gpu: trains recipes/gpt2-124m.yaml
# (bf16, B 16 x T 1024 per step) for a few steps on the KJV tokenized with GPT-2's BPE (made here by
# `moetrain data tokenize --gpt2 .deps/gpt2 ... --out .deps/kjv-gpt2`), and prints tokens/s.
# Usage: [LAUNCH='mpirun -np 2'] scripts/gpu-train-bench.sh [STEPS] [extra overrides...]
# (LAUNCH prefixes the command: several ranks, one GPU each, data-parallel over NCCL.)
set -euo pipefail
cd "$(dirname "$0")/.."
STEPS=${1:-30}
shift || true
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
rm -rf /tmp/gpt2-bench
${LAUNCH:-} build-gpu/moetrain train recipes/gpt2-124m.yaml "data.train=.deps/kjv-gpt2/train_*.bin" "data.val=.deps/kjv-gpt2/val_*.bin" \
  data.tokenizer=.deps/gpt2 train.global_batch=16 train.micro_batch=16 train.steps="$STEPS" schedule.warmup_steps=5 \
  train.eval_every=0 train.sample_every=0 checkpoint.every=0 log.every=5 log.progress=plain train.run_dir=/tmp/gpt2-bench "$@" \
  2>&1 | grep -E "^step|^model|error|done"
cp /tmp/gpt2-bench/metrics.jsonl "$OUT/gpt2-bench-metrics.jsonl"
