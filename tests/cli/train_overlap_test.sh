#!/usr/bin/env bash
# Overlapped gradient reduction (Note [Overlapped gradient reduction] in src/dist/gradient_reducer.cpp):
# a tiny MoE GPT with gradient accumulation, small buckets (many of them) and dist.ep 2, trained 5 steps
# on 2 and on 4 CPU ranks with dist.overlap true and false: the same losses and gradient norms, bit for
# bit (the same buckets and collectives, started at other times), also with bf16 on the wire.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
make_tiny_data
cat > tiny.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dropout: 0.1}
moe: {experts: 4, every: 2, capacity_factor: 2.0}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
train: {steps: 5, global_batch: 16, micro_batch: 2, device: cpu, run_dir: run}
log: {progress: plain, every: 1}
dist: {timeout: 60, ep: 2, bucket_mb: 0.01}
YAML
for np in 2 4; do
  for ov in true false; do
    for wire in f32 bf16; do
      name=np${np}_${ov}_$wire
      mpirun --oversubscribe -np $np "$MT" train tiny.yaml dist.overlap=$ov dist.grad_reduce_dtype=$wire \
        train.run_dir=$name >$name.log 2>&1 || { bad "$name"; tail -5 $name.log; }
    done
  done
done
python3 - <<'PY' && ok "overlap on and off train identically on 2 and 4 ranks" || bad "overlap changed the results"
import json
def rows(p): return [(r["step"], r["loss"], r["grad_norm"]) for r in map(json.loads, open(p)) if "loss" in r]
for np in (2, 4):
    for wire in ("f32", "bf16"):
        on, off = rows(f"np{np}_true_{wire}/metrics.jsonl"), rows(f"np{np}_false_{wire}/metrics.jsonl")
        assert len(on) == 5 and on == off, (np, wire, on, off)
PY
finish "overlap checks passed"
