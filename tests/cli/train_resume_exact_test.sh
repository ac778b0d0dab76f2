#!/usr/bin/env bash
# Bit-exact resume where it is hardest, end to end through `moetrain train`:
#  - 2 ranks with every source of randomness on (dropout, router jitter or rsample noise, random token
#    selection): each rank's stream is saved and restored (Note [One random stream per rank]), so a
#    run resumed from its step-3 checkpoint repeats steps 4-6 exactly;
#  - 20 SIGKILLs at random moments of a run that checkpoints every step: every restart resumes from
#    the newest committed checkpoint, and the losses equal an uninterrupted run's.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
make_tiny_data
cat > moe.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32, dropout: 0.1}
moe: {experts: 4, every: 2, capacity_factor: 0.5, random_token_selection: true}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
schedule: {warmup_steps: 2}
train: {steps: 6, global_batch: 8, micro_batch: 4, device: cpu}
checkpoint: {every: 3}
log: {progress: plain, every: 1}
dist: {timeout: 60}
YAML
same_losses() {  # REF OTHER FROM: OTHER's losses of steps >= FROM (the last line per step) equal REF's exactly
  python3 - "$@" <<'PY'
import json, sys
def losses(p):
    out = {}
    for r in map(json.loads, open(p)):
        if "loss" in r: out[r["step"]] = r["loss"]
    return out
a, b, start = losses(sys.argv[1]), losses(sys.argv[2]), int(sys.argv[3])
steps = [s for s in sorted(a) if s >= start]
diff = [(s, a[s], b.get(s)) for s in steps if b.get(s) != a[s]]
print("steps compared:", len(steps), "differing:", diff[:3])
sys.exit(1 if diff or not steps else 0)
PY
}
for noise in jitter rsample; do
  mpirun --oversubscribe -np 2 "$MT" train moe.yaml moe.noisy_gate=$noise train.run_dir=$noise >$noise.log 2>&1 || { bad "$noise run"; tail -5 $noise.log; }
  mkdir -p $noise-resumed/checkpoints && cp $noise/checkpoints/step_00000003.h5 $noise-resumed/checkpoints/ \
    && echo step_00000003.h5 >$noise-resumed/checkpoints/latest
  mpirun --oversubscribe -np 2 "$MT" train moe.yaml moe.noisy_gate=$noise train.run_dir=$noise-resumed >$noise-r.log 2>&1 \
    || { bad "$noise resume"; tail -5 $noise-r.log; }
  same_losses $noise/metrics.jsonl $noise-resumed/metrics.jsonl 4 && ok "2 ranks, dropout + $noise + RTS: resume is bit-exact" \
    || bad "2 ranks, $noise: resumed losses differ"
done

# 20 SIGKILLs.
cat > kill.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32, dropout: 0.1}
data: {train: data/train_*.bin, val: data/val_*.bin}
optim: {lr: 3.0e-3}
schedule: {warmup_steps: 2}
train: {steps: 1500, micro_batch: 4, grad_accum: 1, device: cpu}
checkpoint: {every: 1, keep: 2}
log: {progress: plain, every: 1}
YAML
"$MT" train kill.yaml train.run_dir=ref >ref.log 2>&1 || bad "uninterrupted run"
RANDOM=20261204
kills=0
for i in $(seq 20); do
  # The last good checkpoint: the newest committed step file (`latest` may lag it by one when the kill
  # fell between a commit and the pointer update; resume takes the newest that verifies).
  before=$(cd killed/checkpoints 2>/dev/null && ls step_*.h5 2>/dev/null | tail -1)
  before=${before:-none}
  "$MT" train kill.yaml train.run_dir=killed >kill$i.log 2>&1 &
  pid=$!
  # Killed at a random moment once training runs (MPI's start-up takes most of a second).
  for _ in $(seq 200); do grep -q "^step " kill$i.log 2>/dev/null && break; sleep 0.05; done
  sleep "0.$((RANDOM % 30))"
  kill -KILL $pid 2>/dev/null && kills=$((kills + 1))
  wait $pid 2>/dev/null
  if [[ $before != none ]]; then
    step=$(echo "$before" | sed -E 's/step_0*([0-9]+)\.h5/\1/')
    grep -q "resumed from killed/checkpoints/$before at step $step" kill$i.log || { bad "kill $i: did not resume from $before"; grep "resumed\|warning" kill$i.log; }
  fi
  if [[ -e killed/checkpoints/latest ]]; then
    [[ -f killed/checkpoints/$(cat killed/checkpoints/latest) ]] || bad "kill $i: latest names no file"
  fi
done
[[ $kills -eq 20 ]] && ok "20 SIGKILLs, each restart resumed from the last good checkpoint" || bad "only $kills kills landed (the run finished early?)"
"$MT" train kill.yaml train.run_dir=killed >final.log 2>&1 || { bad "final run"; tail -5 final.log; }
same_losses ref/metrics.jsonl killed/metrics.jsonl 1 && ok "after 20 SIGKILLs the losses equal an uninterrupted run's" \
  || bad "losses after SIGKILLs differ"
finish "all exact-resume checks passed"
