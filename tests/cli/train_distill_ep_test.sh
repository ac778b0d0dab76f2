#!/usr/bin/env bash
# An expert-parallel teacher (issue: a 13B teacher fits no single GPU): a MoE-4 teacher trained on one
# rank distils into a MoE-4 student on 2 CPU ranks with dist.ep 1 (teacher whole on each rank) and
# dist.ep 2 (the teacher's experts split like the student's, its forward running the all-to-alls): each
# rank holds half the teacher's experts; the first step's KD loss (same student weights) agrees to 1e-6,
# and later steps, where the students' own ep 1 / ep 2 rounding has moved them apart, to 1e-5 of the loss.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
make_tiny_data
cat > teacher.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300}
moe: {experts: 4, every: 1, capacity_factor: 2.0}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
train: {steps: 6, global_batch: 4, micro_batch: 2, device: cpu, run_dir: teacher}
log: {progress: plain, every: 1}
YAML
"$MT" train teacher.yaml >teacher.log 2>&1 || { bad "teacher training"; tail -5 teacher.log; }
cat > student.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300}
moe: {experts: 4, every: 2, capacity_factor: 2.0}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
train: {steps: 5, global_batch: 8, micro_batch: 2, device: cpu, run_dir: run}
log: {progress: plain, every: 1}
distill: {teacher: teacher, kd_coef: 1.0, temperature: 2.0}
dist: {timeout: 60}
YAML
for ep in 1 2; do
  mpirun --oversubscribe -np 2 "$MT" train student.yaml dist.ep=$ep train.run_dir=ep$ep >ep$ep.log 2>&1 \
    || { bad "student with dist.ep $ep"; tail -5 ep$ep.log; }
done
grep -q "experts split by dist.ep 2" ep2.log && ok "the teacher is loaded split by dist.ep 2" || { bad "teacher line"; grep teacher ep2.log; }
python3 - <<'PY' && ok "dist.ep 2 holds half the teacher's experts per rank" || bad "teacher parameters per rank"
import re
def held(p):
    m = re.search(r"teacher: .*, ([0-9.]+)M parameters, ([0-9.]+)M on this rank", open(p).read())
    return float(m.group(1)), float(m.group(2))
total1, here1 = held("ep1.log")
total2, here2 = held("ep2.log")
assert total1 == total2 == here1 and here2 < here1, (total1, here1, total2, here2)
PY
python3 - <<'PY' && ok "the split teacher gives the whole teacher's KD losses" || bad "KD losses differ"
import json
def rows(p): return {r["step"]: (r["loss"], r["kd"]) for r in map(json.loads, open(p)) if "kd" in r}
a, b = rows("ep1/metrics.jsonl"), rows("ep2/metrics.jsonl")
assert sorted(a) == sorted(b) == list(range(1, 6)), (a, b)
assert abs(a[1][1] - b[1][1]) <= 1e-6 * abs(a[1][1]), (a[1], b[1])
for s in a:
    (loss_a, kd_a), (loss_b, kd_b) = a[s], b[s]
    assert abs(loss_a - loss_b) <= 1e-5 * loss_a and abs(kd_a - kd_b) <= 1e-5 * loss_a, (s, a[s], b[s])
PY
finish "expert-parallel teacher checks passed"
