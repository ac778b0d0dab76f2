#!/usr/bin/env bash
# Runs that go wrong, end to end through `moetrain train`: each must end with its documented status
# (never a signal), say what happened, and leave the last good checkpoint as `latest`.
#  - a full disk (a 1.6 MB tmpfs; where mounting is not allowed, a file-size limit) during a
#    checkpoint write, on one rank and under mpirun; a metrics log, recipe.yaml or `latest` that
#    cannot be written (/dev/full);
#  - divergence (optim.lr: 1e30): steps skipped, exit 4 after train.max_bad_steps, nothing saved;
#    `eval` of the damaged-but-finite weights reports the non-finite loss as an error;
#  - `latest` lost, naming a damaged file or a .tmp: resume from the newest checkpoint that verifies
#    with a warning (or refuse with checkpoint.fallback: false), never restart from step 0.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
make_tiny_data
cat > tiny.yaml <<YAML
model: {layers: 2, d_model: 64, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32}
data: {train: $W/data/train_*.bin, val: $W/data/val_*.bin}
optim: {lr: 3.0e-3}
schedule: {warmup_steps: 2}
train: {steps: 6, micro_batch: 4, grad_accum: 1, device: cpu, run_dir: run, eval_every: 3, eval_steps: 2}
checkpoint: {every: 2}
log: {progress: plain}
YAML

# expect_status NAME WANT LOG PATTERN: the last command's status was WANT (not a signal) and LOG holds PATTERN.
expect_status() {
  local name=$1 want=$2 rc=$3 log=$4 pattern=$5
  if [[ $rc -ne $want ]]; then bad "$name: exit status $rc, expected $want"; tail -5 "$log"; return; fi
  grep -q -- "$pattern" "$log" && ok "$name: status $want, says '$pattern'" || { bad "$name: no '$pattern' in $log"; tail -5 "$log"; }
}
# latest_is DIR FILE: `latest` names FILE and `eval` loads it.
latest_is() {
  [[ "$(cat "$1/checkpoints/latest" 2>/dev/null)" == "$2" ]] && "$MT" eval "$1" --steps 1 >/dev/null 2>&1 \
    && ok "$1: latest still names $2, which loads" || bad "$1: latest is '$(cat "$1/checkpoints/latest" 2>/dev/null)', expected $2 (loadable)"
  compgen -G "$1/checkpoints/*.tmp" >/dev/null && bad "$1: a .tmp file was left" || ok "$1: no .tmp left"
}

# --- A full disk during the second checkpoint (the first fits), one rank and two ---
full_disk_run() {  # DIR [mpirun prefix...]
  local dir=$1
  shift
  "$@" "$MT" train tiny.yaml train.run_dir="$dir" >"$dir.log" 2>&1
}
if mkdir -p disk && mount -t tmpfs -o size=1600k tmpfs disk 2>/dev/null; then
  trap 'umount "$W/disk" 2>/dev/null; rm -rf "$W"' EXIT
  full_disk_run disk/one
  expect_status "full disk" 1 $? disk/one.log "step_00000004.h5.tmp: tensor '.*No space left on device"
  latest_is disk/one step_00000002.h5
  rm -rf disk/one
  full_disk_run disk/two mpirun --oversubscribe -np 2
  expect_status "full disk, 2 ranks" 1 $? disk/two.log "No space left on device"
  grep -q "Signal\|signal [0-9]\|MPI_ABORT" disk/two.log && bad "a rank ended by a signal or MPI_Abort" || ok "every rank ended cleanly"
  latest_is disk/two step_00000002.h5
else
  echo "note: tmpfs cannot be mounted here; a 100 KB file-size limit stands for the full disk"
  (trap '' XFSZ; ulimit -f 100; "$MT" train tiny.yaml train.run_dir=fsize >fsize.log 2>&1)
  expect_status "file too large" 1 $? fsize.log "step_00000002.h5.tmp: tensor '.*File too large"
  [[ -e fsize/checkpoints/latest ]] && bad "latest written for a failed checkpoint" || ok "no latest for a failed first checkpoint"
  compgen -G "fsize/checkpoints/*.tmp" >/dev/null && bad "a .tmp file was left" || ok "no .tmp left"
fi

# --- Run files that cannot be written ---
mkdir -p m && ln -s /dev/full m/metrics.jsonl
"$MT" train tiny.yaml train.run_dir=m >m.log 2>&1
expect_status "metrics.jsonl on a full device" 1 $? m.log "cannot write the metrics log m/metrics.jsonl: No space left on device"
mkdir -p y && ln -s /dev/full y/recipe.yaml.tmp
"$MT" train tiny.yaml train.run_dir=y >y.log 2>&1
expect_status "recipe.yaml on a full device" 1 $? y.log "cannot write y/recipe.yaml.tmp: No space left on device"
mkdir -p l/checkpoints && ln -s /dev/full l/checkpoints/latest.tmp
"$MT" train tiny.yaml train.run_dir=l >l.log 2>&1
expect_status "latest on a full device" 1 $? l.log "cannot write l/checkpoints/latest.tmp: No space left on device"

# --- Divergence ---
"$MT" train tiny.yaml train.run_dir=div optim.lr=1e30 train.max_bad_steps=3 >div.log 2>&1
expect_status "divergence" 4 $? div.log "the run diverged: at step 4, 3 steps in a row"
grep -q "update skipped" div.log && ok "skipped steps are said" || bad "skipped steps not said"
python3 -c "
import json; rows = [json.loads(l) for l in open('div/metrics.jsonl') if '\"skipped\"' in l]
assert [r['skipped'] for r in rows] == [0, 1, 1, 1], rows" && ok "skipped steps counted in metrics.jsonl" || bad "metrics skipped field"
[[ "$(ls div/checkpoints)" == "$(printf 'latest\nstep_00000002.h5')" ]] && ok "no checkpoint after the divergence" || bad "checkpoints: $(ls div/checkpoints)"
"$MT" eval div --steps 1 >ev.log 2>&1
expect_status "eval of diverged weights" 1 $? ev.log "not finite"

# --- A lost or damaged latest ---
"$MT" train tiny.yaml train.run_dir=good >good.log 2>&1 || bad "a good run"
resume_case() {  # NAME SETUP-COMMAND [OVERRIDE...]: a run with checkpoints 2 and 4, damaged by SETUP, resumed
  rm -rf r && mkdir -p r/checkpoints && cp good/checkpoints/step_0000000{2,4}.h5 r/checkpoints/ && echo step_00000004.h5 >r/checkpoints/latest
  eval "$2"
  "$MT" train tiny.yaml train.run_dir=r "${@:3}" >r.log 2>&1
}
resume_case "lost" "rm r/checkpoints/latest"
expect_status "latest lost" 0 $? r.log "resumed from r/checkpoints/step_00000004.h5 at step 4"
grep -q "warning: r/checkpoints/latest is missing" r.log && ok "latest lost: warned" || bad "latest lost: no warning"
resume_case "damaged" "truncate -s 5000 r/checkpoints/step_00000004.h5"
expect_status "latest names a damaged file" 0 $? r.log "resumed from r/checkpoints/step_00000002.h5 at step 2"
grep -q "warning: .*step_00000004.h5, which is damaged" r.log && ok "damaged: warned" || bad "damaged: no warning"
resume_case "tmp" "mv r/checkpoints/step_00000004.h5 r/checkpoints/step_00000004.h5.tmp; echo step_00000004.h5.tmp >r/checkpoints/latest"
expect_status "latest names a .tmp" 0 $? r.log "resumed from r/checkpoints/step_00000002.h5 at step 2"
resume_case "older" "echo step_00000002.h5 >r/checkpoints/latest"
expect_status "latest older than a valid file" 0 $? r.log "resumed from r/checkpoints/step_00000004.h5 at step 4"
resume_case "refuse" "rm r/checkpoints/latest" checkpoint.fallback=false
expect_status "fallback off" 1 $? r.log "latest is missing, and the newest checkpoint that verifies is r/checkpoints/step_00000004.h5"
[[ -f r/checkpoints/step_00000004.h5 && ! -e r/checkpoints/step_00000006.h5 ]] && ok "fallback off: nothing overwritten" || bad "fallback off wrote"
resume_case "none valid" "truncate -s 100 r/checkpoints/step_00000002.h5 r/checkpoints/step_00000004.h5"
expect_status "no valid checkpoint" 1 $? r.log "no step_\*.h5 file verifies"

finish "all fault checks passed"
