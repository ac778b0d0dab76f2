#!/usr/bin/env bash
# Every shipped GPU recipe (recipes/*.yaml using GPT-2's tokenizer folder, directly or through base:)
# trains one tiny step on CPU with sampling on: its own settings, shrunk by overrides to 2 layers of
# d 32 (a MoE recipe keeps its kind of experts: 2 of them, or a one-entry Pyramid list), with
# data.tokenizer a GPT-2 folder (tests/data/gpt2_tiny: encoder.json + vocab.bpe), as the recipes'
# data/gpt2 is. PR-MoS students distill from the PR-MoE run trained just before them.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"

# The recipe files of `recipe`'s base chain, the recipe last.
chain() {
  local file=$1 base
  base=$(sed -n 's/^base:[[:space:]]*\([^[:space:]#]*\).*/\1/p' "$file")
  [[ -n "$base" ]] && chain "$(dirname "$file")/$base"
  echo "$file"
}

cd "$W"
tiny_gpt2="$SRC/tests/data/gpt2_tiny"  # 260 tokens: GPT-2's bytes, 3 merges, <|endoftext|>
"$MT" data tokenize --input "$SRC/tests/data/kjv_genesis_excerpt.txt" --gpt2 "$tiny_gpt2" --out data --val-fraction 0.1 \
  >/dev/null || bad "data tokenize --gpt2 FOLDER"
trained=0
for recipe in "$SRC"/recipes/*.yaml; do
  files=$(chain "$recipe")
  # shellcheck disable=SC2086
  grep -qh '^[[:space:]]*tokenizer:[[:space:]]*data/gpt2\b' $files || continue
  # shellcheck disable=SC2086
  experts=$(grep -h '^[[:space:]]*experts:' $files | tail -1)
  moe=()
  if [[ "$experts" == *"["* ]]; then moe=("moe.experts=[2]" moe.every=2)
  elif [[ "$experts" =~ [1-9] ]]; then moe=(moe.experts=2 moe.every=2); fi
  name=$(basename "$recipe" .yaml)
  if "$MT" train "$recipe" "data.train=data/train_*.bin" "data.val=data/val_*.bin" "data.tokenizer=$tiny_gpt2" \
      model.vocab_size=260 train.device=cpu model.dtype=f32 model.layers=2 model.d_model=32 model.heads=2 model.seq_len=16 \
      train.steps=1 schedule.warmup_steps=0 train.global_batch=2 train.micro_batch=2 train.grad_accum=1 \
      train.eval_every=1 train.eval_steps=1 train.sample_every=1 train.sample_tokens=4 dist.dp=0 dist.ep=1 \
      log.progress=plain "${moe[@]}" >"$name.log" 2>&1 \
    && grep -q "sample at step 1" "$name.log" && { [[ $name != pr-mos-* ]] || grep -q "^teacher: " "$name.log"; }; then
    ok "$name trains a tiny step on CPU and samples with the GPT-2 tokenizer folder"
  else
    bad "$name: $(tail -5 "$name.log")"
  fi
  trained=$((trained + 1))
done
[[ $trained -ge 9 ]] && ok "$trained GPU recipes found" || bad "expected the 9 GPU recipes (gpt2, dense, moe, pr-moe, pr-mos), found $trained"
finish "all shipped GPU recipes train a tiny step"
