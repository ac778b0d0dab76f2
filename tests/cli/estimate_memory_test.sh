#!/usr/bin/env bash
# `moetrain estimate` against measured memory (Note [Activation memory] in src/train/memory_estimate.cpp):
# on CPU, for a dense and a residual top-2 MoE model with dropout, under train.recompute none, attention
# and block, the estimate of weights + gradients + AdamW state + one micro-batch's activations is within
# 15% of the peak `bench step` measures. Then the planner (--gpus, --gpu-memory): for a size where the
# recipe's own settings do not fit, its proposed settings are accepted by `validate --dp 4`, and 4 CPU
# ranks running them under mpirun peak below the given memory.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
make_tiny_data
SMALL="model.layers=4 model.d_model=128 model.heads=4 model.seq_len=256 model.vocab_size=1024 model.dtype=f32
  model.dropout=0.1 train.device=cpu train.micro_batch=8 train.global_batch=8"
for moe in "" "moe.experts=8 moe.every=1 moe.top_k=2 moe.mlp_type=residual"; do
  for mode in none attention block; do
    name="${moe:+moe-}$mode"
    "$MT" bench step "$SRC/recipes/gpt2-124m.yaml" $SMALL $moe train.recompute=$mode --warmup 1 --steps 1 \
      >bench-$name.txt 2>&1 || { bad "bench step $name"; tail -3 bench-$name.txt; continue; }
    "$MT" estimate "$SRC/recipes/gpt2-124m.yaml" $SMALL $moe train.recompute=$mode >estimate-$name.txt 2>&1 \
      || { bad "estimate $name"; cat estimate-$name.txt; continue; }
    measured=$(sed -n 's/^bench-step:.* peak_bytes=\([0-9]*\).*/\1/p' bench-$name.txt)
    estimated=$(sed -n 's/^estimate: total_bytes=\([0-9]*\).*/\1/p' estimate-$name.txt)
    python3 -c "
m, e = $measured, $estimated
print('$name: measured %.1f MB, estimated %.1f MB (%+.1f%%)' % (m / 1e6, e / 1e6, 100 * (e / m - 1)))
assert abs(e / m - 1) <= 0.15" && ok "$name: the estimate is within 15% of the measured peak" \
      || bad "$name: estimate $estimated vs measured peak $measured bytes"
  done
done
block=$(sed -n 's/^bench-step:.* peak_bytes=\([0-9]*\).*/\1/p' bench-moe-block.txt)
none=$(sed -n 's/^bench-step:.* peak_bytes=\([0-9]*\).*/\1/p' bench-moe-none.txt)
[[ -n $block && -n $none && $block -lt $((none * 2 / 3)) ]] && ok "block recomputation at least a third below none" \
  || bad "block recompute peak $block vs none $none"

# The planner: an 8-expert top-2 model on 4 ranks with 40 MB each; as written (ep 1, micro-batch 8, no
# recompute) it needs more.
cat > plan.yaml <<YAML
model: {layers: 4, d_model: 128, heads: 4, seq_len: 256, vocab_size: 1024, dtype: f32}
moe: {experts: 8, every: 1, top_k: 2}
data: {train: data/train_*.bin, val: data/val_*.bin}
train: {steps: 2, global_batch: 32, micro_batch: 8, device: cpu, run_dir: run}
dist: {timeout: 60}
YAML
"$MT" estimate plan.yaml --gpus 4 --gpu-memory 40MB >plan.txt 2>&1 || { bad "estimate --gpus"; cat plan.txt; }
cat plan.txt
own=$(sed -n 's/^estimate: total_bytes=\([0-9]*\).*/\1/p' plan.txt)
[[ -n $own && $own -gt $((40 * 1024 * 1024)) ]] && ok "the recipe's own settings need more than 40 MB" \
  || bad "the test recipe already fits ($own bytes)"
proposed=$(sed -n 's/^proposed: mpirun -np 4 moetrain train plan.yaml //p' plan.txt)
[[ -n $proposed ]] && ok "a plan is proposed: $proposed" || bad "no proposed plan"
"$MT" validate plan.yaml --dp 4 $proposed >validate.txt 2>&1 && ok "validate --dp 4 accepts it" \
  || { bad "validate refused the plan"; tail -3 validate.txt; }
mpirun --oversubscribe -np 4 "$MT" bench step plan.yaml $proposed --warmup 1 --steps 1 >plan-bench.txt 2>&1 \
  || { bad "4 ranks running the plan"; tail -5 plan-bench.txt; }
peak=$(sed -n 's/^bench-step:.* peak_bytes=\([0-9]*\).*/\1/p' plan-bench.txt)
[[ -n $peak && $peak -le $((40 * 1024 * 1024)) ]] && ok "the plan's measured peak ($peak bytes) fits 40 MB" \
  || bad "the plan's peak $peak exceeds 40 MB"
expect_error "no plan fits" "no setting fits 4 GPUs of 1MB" "$MT" estimate plan.yaml --gpus 4 --gpu-memory 1MB
expect_error "--gpus alone" "--gpus and --gpu-memory go together" "$MT" estimate plan.yaml --gpus 4
finish "estimate memory checks passed"
