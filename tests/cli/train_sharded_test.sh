#!/usr/bin/env bash
# Sharded training end to end through `moetrain train` under mpirun, on a tiny MoE GPT (4 experts on
# block 1, 2 on block 3: Pyramid, so the two layers split over groups of different sizes). Expert
# parallelism:
#  - 4 ranks with dist.ep = 4 (and 2) give the losses and gradient norms of dist.ep = 1, to rounding;
#  - a checkpoint written under dist.ep = 4 holds whole expert tensors: it resumes under dist.ep = 1
#    to the losses of an uninterrupted run, and `moetrain eval` reads it in one process;
#  - dropless routing under expert parallelism (ranks agree on the capacity) trains as without it;
#  - recipes that cannot be split are refused with errors naming dist.ep.
# ZeRO-1 (dist.zero: 1), alone and with dist.ep = 2: the dist.zero = 0 losses; its checkpoint (the
# optimizer state assembled whole) resumes with dist.zero = 0 to the uninterrupted losses.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
run4() { mpirun --oversubscribe -np 4 "$MT" train tiny.yaml "$@"; }

cd "$W"
make_tiny_data
cat > tiny.yaml <<YAML
model: {layers: 4, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32}
moe: {experts: [4, 2], every: 2, capacity_factor: 1.25}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
schedule: {warmup_steps: 2}
train: {steps: 8, global_batch: 8, micro_batch: 2, device: cpu, eval_every: 4, eval_steps: 2}
checkpoint: {every: 4}
log: {progress: plain, every: 1}
dist: {timeout: 60}  # a collective-order bug fails in a minute with the watchdog's message, not at the ctest timeout
YAML
run4 dist.ep=1 train.run_dir=ep1 >ep1.log 2>&1 || { bad "dist.ep=1 run"; tail -5 ep1.log; }
run4 dist.ep=4 train.run_dir=ep4 >ep4.log 2>&1 || { bad "dist.ep=4 run"; tail -5 ep4.log; }
run4 dist.ep=2 train.run_dir=ep2 >ep2.log 2>&1 || { bad "dist.ep=2 run"; tail -5 ep2.log; }
cat > same.py <<'PY'
import json, sys
def rows(p, key): return {r["step"]: r[key] for r in map(json.loads, open(p)) if key in r}
ref = sys.argv[1]
for other in sys.argv[2:]:
    for key in ("loss", "grad_norm", "val_loss"):
        a, b = rows(ref, key), rows(other, key)
        assert sorted(a) == sorted(b) and a, (key, a, b)
        worst = max(abs(a[s] - b[s]) / abs(a[s]) for s in a)
        print(other, key, "max rel diff", worst)
        assert worst < 1e-5, (other, key)
PY
python3 same.py ep1/metrics.jsonl ep4/metrics.jsonl ep2/metrics.jsonl \
  && ok "dist.ep 4 and 2 give the dist.ep=1 losses, gradient norms and val losses" || bad "expert-parallel runs differ"

# Checkpoints move between expert-parallel sizes: ep=4 resumed under ep=1 (whole tensors read back) and
# ep=1 resumed under ep=4 (each rank reads its experts) continue as the uninterrupted run did.
for pair in "4 1" "1 4"; do
  set -- $pair
  run4 dist.ep=$2 train.run_dir=resumed$1$2 checkpoint.resume=ep$1/checkpoints/step_00000004.h5 >resume$1$2.log 2>&1 \
    && grep -q "resumed from .* at step 4" resume$1$2.log || { bad "resume of an ep=$1 checkpoint under ep=$2"; tail -5 resume$1$2.log; }
  python3 - resumed$1$2/metrics.jsonl <<'PY' && ok "an ep=$1 checkpoint resumes under ep=$2 to the uninterrupted losses" \
    || bad "ep=$1 -> ep=$2 resumed losses differ"
import json, sys
def rows(p): return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows("ep1/metrics.jsonl"), rows(sys.argv[1])
assert sorted(b) == [5, 6, 7, 8], b
assert all(abs(a[s] - b[s]) <= 1e-5 * abs(a[s]) for s in b), (a, b)
PY
done
v1=$("$MT" eval ep1/checkpoints/step_00000008.h5 --steps 2 2>&1 | grep -oE "val loss: [0-9.]+")
v4=$("$MT" eval ep4/checkpoints/step_00000008.h5 --steps 2 2>&1 | grep -oE "val loss: [0-9.]+")
[[ -n "$v4" && "$v1" == "$v4" ]] && ok "eval reads the ep=4 checkpoint in one process ($v4)" \
  || bad "eval of the ep=4 checkpoint: '$v4' vs '$v1'"

# Splits that cannot work are refused, naming dist.ep.
run4 dist.ep=3 train.run_dir=bad >bad1.log 2>&1 && bad "dist.ep=3 on 4 ranks ran" || grep -q "dist.ep = 3 does not divide" bad1.log \
  && ok "dist.ep must divide the rank count" || { bad "dist.ep=3 error"; tail -3 bad1.log; }
run4 dist.ep=4 "moe.experts=[6, 2]" train.run_dir=bad >bad2.log 2>&1 && bad "6 experts over 4 ranks ran" \
  || grep -q "block 1 has 6 experts" bad2.log && ok "a layer whose experts cannot be split is named" || { bad "6-expert error"; tail -3 bad2.log; }

# Dropless: every rank's largest expert count differs; the group agrees on the largest (no hang, same losses).
run4 dist.ep=1 moe.drop_tokens=false train.steps=4 train.run_dir=dl1 >dl1.log 2>&1 || { bad "dropless ep=1"; tail -5 dl1.log; }
run4 dist.ep=4 moe.drop_tokens=false train.steps=4 train.run_dir=dl4 >dl4.log 2>&1 || { bad "dropless ep=4"; tail -5 dl4.log; }
python3 same.py dl1/metrics.jsonl dl4/metrics.jsonl >/dev/null && ok "dropless with dist.ep=4 gives the dist.ep=1 losses" \
  || bad "dropless expert-parallel losses differ"

# ZeRO-1: each rank keeps a quarter of the optimizer state; the owners broadcast their parameters.
run4 dist.zero=1 train.run_dir=z1 >z1.log 2>&1 || { bad "dist.zero=1 run"; tail -5 z1.log; }
run4 dist.zero=1 dist.ep=2 train.run_dir=z1ep2 >z1ep2.log 2>&1 || { bad "dist.zero=1 dist.ep=2 run"; tail -5 z1ep2.log; }
python3 same.py ep1/metrics.jsonl z1/metrics.jsonl z1ep2/metrics.jsonl >/dev/null \
  && ok "dist.zero=1 (alone and with dist.ep=2) gives the dist.zero=0 losses" || bad "ZeRO-1 losses differ"
run4 dist.zero=0 train.run_dir=resumedz checkpoint.resume=z1/checkpoints/step_00000004.h5 >resumez.log 2>&1 \
  || { bad "resume of a ZeRO-1 checkpoint"; tail -5 resumez.log; }
python3 - <<'PY' && ok "a ZeRO-1 checkpoint holds the whole optimizer state (resumes without ZeRO)" || bad "ZeRO-1 resume differs"
import json
def rows(p): return {r["step"]: r["loss"] for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows("ep1/metrics.jsonl"), rows("resumedz/metrics.jsonl")
assert sorted(b) == [5, 6, 7, 8], b
assert all(abs(a[s] - b[s]) <= 1e-5 * abs(a[s]) for s in b), (a, b)
PY

finish "all sharded-training checks passed"
