#!/usr/bin/env bash
# `moetrain compare` over seeds (Note [Seed groups] in tools/report/seed_groups.h). Synthetic run
# folders, 3 seeds x 3 variants plus a lone run, whose final val losses give hand-computed means,
# sample standard deviations and two-standard-error verdicts: the printed table, the printed and
# Markdown gap tables, the plot. Then two real tiny CPU runs of one recipe with two seeds share a row.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"

# run NAME SEED MOE FINAL_VAL TOKENS_PER_S DROP_RATE [LAST_STEP]: a run folder with a recipe (MOE: a
# YAML moe map) and metrics: training lines at steps 10 and LAST_STEP (default 20; DROP_RATE "-":
# none, as a dense run), eval lines at both (val loss FINAL_VAL + 0.5, then FINAL_VAL; at LAST_STEP
# 10 only FINAL_VAL).
run() {
  local name=$1 seed=$2 moe=$3 val=$4 tps=$5 drop=$6 last=${7:-20}
  mkdir -p "$name"
  cat > "$name/recipe.yaml" <<YAML
model: {layers: 2, d_model: 64, heads: 2, seq_len: 32, vocab_size: 300}
moe: $moe
data: {train: data/train_*.bin}
train: {steps: 20, micro_batch: 2, grad_accum: 1, seed: $seed, run_dir: $name}
YAML
  local drop_field="" step
  [[ $drop != - ]] && drop_field=", \"drop_rate\": $drop"
  {
    for step in 10 20; do
      ((step > last)) && break
      local v=$val
      ((step < last)) && v=$(python3 -c "print($val + 0.5)")
      echo "{\"step\": $step, \"tokens\": $((step * 64)), \"loss\": 4, \"tokens_per_s\": $tps$drop_field}"
      echo "{\"step\": $step, \"tokens\": $((step * 64)), \"val_loss\": $v}"
    done
  } > "$name/metrics.jsonl"
}
dense="{experts: 0}"
moe="{experts: 4, every: 2}"
top2="{experts: 4, every: 2, top_k: 2}"
# final val loss: dense 3.0, 3.4, 3.2 (mean 3.2, std 0.2); moe 2.9, 3.0, 3.1 (3.0, 0.1);
# top2 2.5, 2.55, 2.6 (2.55, 0.05), its third seed stopped at step 10.
run dense-s1 1 "$dense" 3.0 1000 -
run moe-s1 1 "$moe" 2.9 2000 0.10
run top2-s1 1 "$top2" 2.5 1500 0.20
run dense-s2 2 "$dense" 3.4 1100 -
run moe-s2 2 "$moe" 3.0 2000 0.12
run top2-s2 2 "$top2" 2.55 1500 0.20
run dense-s3 3 "$dense" 3.2 1200 -
run moe-s3 3 "$moe" 3.1 2000 0.14
run top2-s3 3 "$top2" 2.6 1500 0.20 10
# A lone run: another learning rate, so a recipe of its own.
run lone 1 "$moe" 2.8 900 0.05
sed -i 's/^data:/optim: {lr: 1.0e-3}\ndata:/' lone/recipe.yaml

"$MT" compare dense-s1 moe-s1 top2-s1 dense-s2 moe-s2 top2-s2 dense-s3 moe-s3 top2-s3 lone --out cmp >out.txt 2>err.txt \
  || bad "compare over seeds failed: $(cat err.txt)"
squeezed=$(tr -s ' ' <out.txt)
# has LINE: the printed output (runs of spaces squeezed) has LINE, a whole line, as an extended regex.
has() { grep -qxE "$1" <<<"$squeezed"; }
P='[0-9.]+[KMB]?'  # a parameter count
has "run variant n total params active params final val loss best val loss tokens/s steps drop rate" \
  && ok "the table has an n column" || bad "header: $(head -1 out.txt)"
has "dense-s\{1,2,3\} dense 3 $P $P 3\.2000 ± 0\.2000 3\.2000 ± 0\.2000 1100 ± 100 20 -" \
  && ok "dense: 3 seeds, mean ± std of final and best val loss and tokens/s" || bad "dense row: $squeezed"
has "moe-s\{1,2,3\} MoE-4 3 $P $P 3\.0000 ± 0\.1000 3\.0000 ± 0\.1000 2000 ± 0 20 12\.00% ± 2\.00%" \
  && ok "moe: 3 seeds, the drop rate's mean ± std" || bad "moe row: $squeezed"
has "top2-s\{1,2,3\} MoE-4 top-2 3 $P $P 2\.5500 ± 0\.0500 2\.5500 ± 0\.0500 1500 ± 0 10\.\.20 20\.00% ± 0\.00%" \
  && ok "top2: a run that stopped early shows in the steps column" || bad "top2 row: $squeezed"
has "lone MoE-4 1 $P $P 2\.8000 2\.8000 900 20 5\.00%" && ok "a lone run: n 1, plain values" \
  || bad "lone row: $squeezed"
# dense - moe = 0.2, 2 SE = 2 sqrt(0.04/3 + 0.01/3) = 0.2582: within; dense - top2 = 0.65,
# 2 SE = 2 sqrt(0.04/3 + 0.0025/3) = 0.2380: beyond; moe - top2 = 0.45, 2 SE = 0.1291: beyond.
has "A B A - B 2 SE beyond 2 SE" && ok "a gap table is printed" || bad "no gap table: $squeezed"
has "dense-s\{1,2,3\} moe-s\{1,2,3\} 0\.2000 0\.2582 no" && ok "dense vs moe: within two standard errors" \
  || bad "dense vs moe: $squeezed"
has "dense-s\{1,2,3\} top2-s\{1,2,3\} 0\.6500 0\.2380 yes" && ok "dense vs top2: beyond two standard errors" \
  || bad "dense vs top2: $squeezed"
has "moe-s\{1,2,3\} top2-s\{1,2,3\} 0\.4500 0\.1291 yes" && ok "moe vs top2: beyond two standard errors" \
  || bad "moe vs top2: $squeezed"
[[ $(grep -c "lone" out.txt) == 1 ]] && ok "a lone run is left out of the gaps" || bad "lone in the gaps: $squeezed"

md=cmp/compare.md
grep -qF "| moe-s{1,2,3} | MoE-4 | 3 |" $md && grep -qF "| 3.0000 ± 0.1000 | 3.0000 ± 0.1000 | 2000 ± 0 | 20 | 12.00% ± 2.00% |" $md \
  && ok "compare.md has the row" || bad "compare.md row: $(cat $md)"
grep -qF "| dense-s{1,2,3} | top2-s{1,2,3} | 0.6500 | 0.2380 | yes |" $md && ok "compare.md has the gap table" \
  || bad "compare.md gaps: $(cat $md)"
grep -qF "Beyond two standard errors: dense-s{1,2,3} vs top2-s{1,2,3}, moe-s{1,2,3} vs top2-s{1,2,3}." $md \
  && ok "compare.md names the gaps beyond two standard errors" || bad "compare.md verdict: $(cat $md)"
grep -qF "differ only in \`train.seed\`" $md && grep -qF "shaded from the lowest to the highest seed" $md \
  && ok "compare.md says how rows and bands are made" || bad "compare.md explanation: $(cat $md)"
[[ -s cmp/val_loss.png && $(head -c 8 cmp/val_loss.png | od -An -tx1 | tr -d ' \n') == 89504e470d0a1a0a ]] \
  && ok "the plot is written" || bad "no val_loss.png"

# Without seeds nothing changes but the n column: no gap table.
"$MT" compare dense-s1 moe-s1 lone >plain.txt 2>&1 || bad "compare of single runs failed: $(cat plain.txt)"
[[ $(wc -l <plain.txt) == 4 ]] && ! grep -q "±" plain.txt && ok "single runs: one row each, no spread, no gaps" \
  || bad "single runs: $(cat plain.txt)"
# One recipe run twice with one seed (before and after a change, say) stays two rows.
cp -r dense-s1 dense-again-s1
sed -i 's/run_dir: dense-s1/run_dir: dense-again-s1/' dense-again-s1/recipe.yaml
"$MT" compare dense-s1 dense-s2 dense-again-s1 >again.txt 2>&1 || bad "compare of a repeated seed failed"
tr -s ' ' <again.txt | grep -qE "^dense-s\{1,2\} dense 2 .* 3\.2000 ± 0\.2828 " && tr -s ' ' <again.txt | grep -qE "^dense-again-s1 dense 1 " \
  && ok "a repeated seed opens a new row" || bad "repeated seed: $(cat again.txt)"

# Real runs: two seeds of one tiny recipe share a row (their saved recipes differ only in seed and run_dir).
make_tiny_data
for seed in 1 2; do
  "$MT" train "$SRC/recipes/quickstart.yaml" "data.train=data/train_*.bin" "data.val=data/val_*.bin" data.tokenizer=tok.bpe \
    model.vocab_size=300 train.device=cpu model.dtype=f32 model.layers=2 model.d_model=32 model.heads=2 model.seq_len=16 \
    "moe.experts=[2]" train.steps=4 schedule.warmup_steps=0 train.global_batch=2 train.micro_batch=2 train.grad_accum=1 \
    train.eval_every=2 train.eval_steps=1 train.sample_every=0 log.progress=plain train.seed=$seed \
    train.run_dir=tiny-s$seed >tiny-s$seed.log 2>&1 || bad "tiny run seed $seed: $(tail -3 tiny-s$seed.log)"
done
"$MT" compare tiny-s1 tiny-s2 --out tiny-cmp >tiny.txt 2>&1 || bad "compare of real runs: $(cat tiny.txt)"
tr -s ' ' <tiny.txt | grep -qE "^tiny-s\{1,2\} PR-MoE 2 .* [0-9]\.[0-9]{4} ± 0\.[0-9]{4} .* 4 " \
  && ok "two real runs with different seeds share a row" || bad "real runs: $(cat tiny.txt)"
finish "compare groups seeds: mean ± std, n, and gaps against two standard errors"
