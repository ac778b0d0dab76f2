#!/usr/bin/env bash
# End-to-end CLI checks run by ctest: a tiny run trained through `moetrain` (tokenizer, shards,
# train, eval, generate, inspect), then damaged checkpoints and bad recipes, each of which must
# exit non-zero with a message naming the file, line or key — and never replace a good checkpoint.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"

cd "$W"
make_tiny_data
cat > tiny.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32}
data: {train: data/train_*.bin, val: data/val_*.bin, tokenizer: tok.bpe}
optim: {lr: 3.0e-3}
schedule: {warmup_steps: 2}
train: {steps: 6, micro_batch: 4, grad_accum: 1, device: cpu, run_dir: run, eval_every: 3, eval_steps: 2}
checkpoint: {every: 3}
log: {progress: plain}
YAML
"$MT" train tiny.yaml >train.log 2>&1 && ok "train a tiny run" || { bad "train"; cat train.log; }
"$MT" eval run --steps 2 >eval.txt && grep -q "val loss" eval.txt && ok "eval prints the val loss" || bad "eval"
"$MT" generate run --prompt "In the beginning" --max-tokens 8 --seed 3 >gen1.txt && "$MT" generate run --prompt "In the beginning" --max-tokens 8 --seed 3 >gen2.txt \
  && cmp -s gen1.txt gen2.txt && ok "generate is repeatable for a seed" || bad "generate"
"$MT" inspect run >inspect.txt && grep -q "model.wte.weight" inspect.txt && ok "inspect lists the tensors" || bad "inspect"
"$MT" estimate tiny.yaml >estimate.txt && grep -q "parameters (total)" estimate.txt && grep -q "memory per rank" estimate.txt \
  && ok "estimate" || bad "estimate"

# Evaluating a MoE run with and without token dropping (eval capacity factor 0.25 drops most tokens;
# earliest first: on this barely trained model, random token selection's drops can hide in 4 decimals).
sed -e 's/run_dir: run,/run_dir: run-moe,/' \
  -e 's/^optim:/moe: {experts: 4, every: 2, eval_capacity_factor: 0.25, min_capacity: 1, random_token_selection: false}\noptim:/' \
  tiny.yaml >tiny-moe.yaml
"$MT" train tiny-moe.yaml >train-moe.log 2>&1 || { bad "train a tiny MoE run"; cat train-moe.log; }
dropping=$("$MT" eval run-moe --steps 2 | grep "val loss")
dropless=$("$MT" eval run-moe --steps 2 --dropless | grep "val loss")
roomy=$("$MT" eval run-moe --steps 2 moe.eval_capacity_factor=100 | grep "val loss")
[[ -n "$dropless" && "$dropless" == "$roomy" && "$dropless" != "$dropping" ]] \
  && ok "eval --dropless keeps every token (as capacity factor 100 does; 0.25 differs)" \
  || bad "eval --dropless: '$dropless', capacity 100: '$roomy', capacity 0.25: '$dropping'"
expect_error "an eval override that changes a weight's shape is refused" "moe.experts" "$MT" eval run-moe moe.experts=8

# Damaged checkpoints.
good=run/checkpoints/step_00000006.h5
cp "$good" trunc.h5 && truncate -s $(($(stat -c %s "$good") / 2)) trunc.h5
expect_error "truncated checkpoint is refused, naming the file" "trunc.h5" "$MT" inspect trunc.h5
expect_error "eval of a truncated checkpoint is refused" "trunc.h5" "$MT" eval trunc.h5
cp "$good" flip.h5
off=$(( $(stat -c %s flip.h5) - 4096 ))
printf '\xff' | dd of=flip.h5 bs=1 seek=$off conv=notrunc status=none
cmp -s "$good" flip.h5 && bad "byte flip did not change the file"
expect_error "one flipped byte is detected, naming the file" "flip.h5" "$MT" inspect flip.h5
mkdir -p run2/checkpoints && echo step_00000099.h5 > run2/checkpoints/latest
sed 's#run_dir: run#run_dir: run2#' tiny.yaml > tiny2.yaml
expect_error "latest pointing nowhere is named" "step_00000099.h5" "$MT" train tiny2.yaml
before=$(md5sum "$good" | cut -d' ' -f1)
expect_error "resume from a damaged checkpoint fails" "flip.h5" "$MT" train tiny.yaml checkpoint.resume=flip.h5 train.steps=9
[[ $(md5sum "$good" | cut -d' ' -f1) == "$before" ]] && ok "the good checkpoint is untouched" || bad "good checkpoint changed"

# Bad recipes: the message names file:line and the dotted key.
sed 's/layers: 2, d_model/layrs: 2, d_model/' tiny.yaml > unknown.yaml
expect_error "unknown key with did-you-mean" "unknown.yaml:1" "$MT" validate unknown.yaml
expect_error "did-you-mean names the key" "model.layers" "$MT" validate unknown.yaml
sed 's/layers: 2,/layers: two,/' tiny.yaml > wrongtype.yaml
expect_error "wrong type names file:line" "wrongtype.yaml:1" "$MT" validate wrongtype.yaml
{ cat tiny.yaml; echo "optim: {lr: 1.0e-3}"; } > dup.yaml
expect_error "duplicate key names file:line" "dup.yaml:8" "$MT" validate dup.yaml
expect_error "unknown override key" "optim.lrr" "$MT" validate tiny.yaml optim.lrr=1
expect_error "bad data file is named" "nothere_" "$MT" train tiny.yaml data.train=nothere_*.bin train.run_dir=run3

finish "all CLI checks passed"
