#!/usr/bin/env bash
# Hierarchical all-to-all (Note [Hierarchical all-to-all] in mt/dist/expert_parallel.h) end to end: a
# tiny MoE GPT (8 experts on every other block, dropout on, dropless in the second pair) trained with
# dist.ep 4 on 4 CPU ranks of one host, declared as nodes of 2 (dist.node_size: 2, two-phase exchange)
# and as one node (the default here: flat): the same losses, gradient norms and val losses, bit for
# bit. A node size that does not fit is refused naming dist.node_size.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
run4() { mpirun --oversubscribe -np 4 "$MT" train tiny.yaml "$@"; }
cd "$W"
make_tiny_data
cat > tiny.yaml <<YAML
model: {layers: 4, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dropout: 0.1, dtype: f32}
moe: {experts: 8, every: 2, top_k: 2, capacity_factor: 1.0}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
train: {steps: 6, global_batch: 8, micro_batch: 2, device: cpu, eval_every: 3, eval_steps: 2}
log: {progress: plain, every: 1}
dist: {timeout: 60, ep: 4}
YAML
for drop in true false; do
  run4 dist.node_size=2 moe.drop_tokens=$drop train.run_dir=node2_$drop >node2_$drop.log 2>&1 \
    || { bad "dist.node_size=2 run (drop_tokens $drop)"; tail -5 node2_$drop.log; }
  run4 moe.drop_tokens=$drop train.run_dir=flat_$drop >flat_$drop.log 2>&1 \
    || { bad "flat run (drop_tokens $drop)"; tail -5 flat_$drop.log; }
done
grep -q "expert all-to-all: two-phase, within then across nodes (nodes of 2 ranks)" node2_true.log \
  && grep -q "expert all-to-all: flat (nodes of 4 ranks)" flat_true.log \
  && ok "dist.node_size 2 runs the two-phase exchange; the default (one host of 4) the flat one" \
  || bad "the exchange reported is not the one asked for"
python3 - <<'PY' && ok "nodes of 2 (two-phase all-to-all) train as the flat all-to-all, bit for bit" \
  || bad "node_size 2 changed the results"
import json
def rows(p): return [(r["step"], r.get("loss"), r.get("grad_norm"), r.get("val_loss"))
                     for r in map(json.loads, open(p)) if "loss" in r or "val_loss" in r]
for drop in ("true", "false"):
    two, flat = rows(f"node2_{drop}/metrics.jsonl"), rows(f"flat_{drop}/metrics.jsonl")
    assert len([r for r in flat if r[1] is not None]) == 6 and any(r[3] is not None for r in flat), flat
    assert two == flat, (drop, two, flat)
PY

run4 dist.node_size=3 train.run_dir=bad >bad.log 2>&1 && bad "dist.node_size=3 on 4 ranks ran" \
  || grep -q "dist.node_size = 3 does not divide the job's 4 ranks" bad.log \
  && ok "dist.node_size must divide the rank count" || { bad "dist.node_size=3 error"; tail -3 bad.log; }
finish "node size checks passed"
