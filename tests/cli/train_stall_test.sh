#!/usr/bin/env bash
# A stalled rank ends the job: two ranks train, one is frozen with SIGSTOP, and the other's watchdog
# (dist.timeout) ends the job within seconds, non-zero, naming its rank, the step and the phase it
# waited in, instead of hanging in the collective forever.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
make_tiny_data
cat > tiny.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32}
data: {train: data/train_*.bin, val: data/val_*.bin}
schedule: {warmup_steps: 2}
train: {steps: 100000, global_batch: 8, micro_batch: 4, device: cpu, run_dir: stall, eval_every: 0}
checkpoint: {every: 0}
dist: {timeout: 3}
log: {progress: plain, every: 1}
YAML
mpirun --oversubscribe -np 2 "$MT" train tiny.yaml >stall.log 2>&1 &
job=$!
for _ in $(seq 300); do grep -q "^step 3/" stall.log 2>/dev/null && break; sleep 0.1; done
rank_pids=()
for d in /proc/[0-9]*; do  # the ranks: moetrain processes started in this folder (no procps needed)
  [[ $(cat "$d/comm" 2>/dev/null) == moetrain && $(readlink "$d/cwd" 2>/dev/null) == "$W" ]] && rank_pids+=("${d#/proc/}")
done
[[ ${#rank_pids[@]} -eq 2 ]] && ok "two ranks training" || bad "found ${#rank_pids[@]} rank processes"
start=$(date +%s)
kill -STOP "${rank_pids[0]}"
for _ in $(seq 600); do kill -0 $job 2>/dev/null || break; sleep 0.1; done  # the test itself must not hang
kill -0 $job 2>/dev/null && { bad "the job still runs 60 s after the stall"; kill -9 $job "${rank_pids[@]}" 2>/dev/null; }
wait $job
rc=$?
elapsed=$(( $(date +%s) - start ))
kill -9 "${rank_pids[@]}" 2>/dev/null
[[ $rc -ne 0 ]] && ok "the job exits non-zero (rc $rc)" || bad "the job exited 0"
[[ $elapsed -lt 30 ]] && ok "within ${elapsed} s of the stall (timeout 3 s)" || bad "took ${elapsed} s"
grep -qE "error on rank [01]: no progress for [0-9]+ s in .* of step [0-9]+ \(dist.timeout = 3 s\)" stall.log \
  && ok "the message names the rank, step, phase and dist.timeout" || { bad "no watchdog message"; tail -5 stall.log; }
finish "all stall checks passed"
