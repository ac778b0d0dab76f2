#!/usr/bin/env bash
# The KJV-small comparison: trains the dense, MoE, Pyramid-MoE, Residual-MoE, PR-MoE and top-2 MoE
# variants (recipes/kjv-small-*.yaml, about 3-4 minutes each on 2 CPU cores), then writes their
# table and val-loss plot with `moetrain compare` to runs/compare-kjv/. Extra arguments are recipe
# overrides for every run (e.g. train.steps=100). A finished run resumes at its end and trains no
# further; remove runs/kjv-small-<variant> to train it again. VARIANTS="dense moe" picks a subset.
# SEEDS="1 2 3" trains each variant once per train.seed (runs/kjv-small-<variant>-s<seed>), and
# compare groups the seeds of a variant into one row (mean +- std, gaps against two standard errors).
set -euo pipefail
cd "$(dirname "$0")/.."
MT=build/moetrain
if [[ ! -x $MT ]]; then
  echo "compare-kjv: $MT not found; run scripts/setup.sh (or scripts/quickstart.sh) first" >&2
  exit 1
fi
if ! ls data/kjv/train_*.bin >/dev/null 2>&1 || ! ls data/kjv/val_*.bin >/dev/null 2>&1 || [[ ! -s data/kjv/tokenizer.bpe ]]; then
  echo "compare-kjv: no KJV token shards in data/kjv; run scripts/quickstart.sh first (it prepares them)" >&2
  exit 1
fi
read -ra variants <<<"${VARIANTS:-dense moe pyramid residual prmoe top2}"
read -ra seeds <<<"${SEEDS:-}"
runs=()
for v in "${variants[@]}"; do
  recipe=recipes/kjv-small-$v.yaml
  [[ -f $recipe ]] || { echo "compare-kjv: no recipe $recipe" >&2; exit 1; }
  for seed in "${seeds[@]:-recipe}"; do
    run=runs/kjv-small-$v
    seed_args=()
    if [[ $seed != recipe ]]; then
      run=$run-s$seed
      seed_args=("train.seed=$seed" "train.run_dir=$run")
    fi
    echo "== training $recipe ${seed_args[*]}"
    start=$SECONDS
    $MT train "$recipe" "${seed_args[@]}" "$@"
    echo "== $run: $((SECONDS - start)) s"
    runs+=("$run")
  done
done
echo "== comparing ${runs[*]}"
$MT compare "${runs[@]}" --out runs/compare-kjv
