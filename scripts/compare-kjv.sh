#!/usr/bin/env bash
# The KJV-small comparison: trains the dense, MoE, Pyramid-MoE, Residual-MoE, PR-MoE and top-2 MoE
# variants (recipes/kjv-small-*.yaml, about 3-4 minutes each on 2 CPU cores), then writes their
# table and val-loss plot with `moetrain compare` to runs/compare-kjv/. Extra arguments are recipe
# overrides for every run (e.g. train.steps=100). A finished run resumes at its end and trains no
# further; remove runs/kjv-small-<variant> to train it again. VARIANTS="dense moe" picks a subset.
# SEEDS="1 2 3" trains each variant once per train.seed (runs/kjv-small-<variant>-s<seed>), and
# compare groups the seeds of a variant into one row (mean +- std, gaps against two standard errors);
# a student's teacher is then the same seed's run of the teacher recipe (runs/kjv-small-prmoe-s<seed>).
# JOBS=N trains up to N runs at once (each logs to <run>.log; for a GPU, where one tiny run leaves it
# idle); a student waits for nothing, so train its teacher in an earlier call.
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
failed=0
train_run() {  # recipe run overrides...: one training run, timed
  local recipe=$1 run=$2 start=$SECONDS
  shift 2
  echo "== training $recipe $*"
  $MT train "$recipe" "$@"
  echo "== $run: $((SECONDS - start)) s"
}
recipe_teacher() {  # recipe: its distill.teacher (unquoted; empty for none), followed through `base:` recipes
  local line base
  line=$(grep -m1 '^ *teacher:' "$1" || true)
  base=$(sed -n 's/^base: *\([^ #]*\).*/\1/p' "$1")
  if [[ -n $line ]]; then
    sed -E 's/^ *teacher: *"?([^ #"]*)"?.*/\1/' <<<"$line"
  elif [[ -n $base ]]; then
    recipe_teacher "$(dirname "$1")/$base"
  fi
}
for v in "${variants[@]}"; do
  recipe=recipes/kjv-small-$v.yaml
  [[ -f $recipe ]] || { echo "compare-kjv: no recipe $recipe" >&2; exit 1; }
  teacher=$(recipe_teacher "$recipe")
  for seed in "${seeds[@]:-recipe}"; do
    run=runs/kjv-small-$v
    seed_args=()
    if [[ $seed != recipe ]]; then
      run=$run-s$seed
      seed_args=("train.seed=$seed" "train.run_dir=$run")
      [[ -n $teacher ]] && seed_args+=("distill.teacher=$teacher-s$seed")
    fi
    if ((${JOBS:-1} > 1)); then
      mkdir -p runs
      while (($(jobs -rp | wc -l) >= JOBS)); do wait -n || failed=1; done
      train_run "$recipe" "$run" "${seed_args[@]}" "$@" >"$run.log" 2>&1 &
    else
      train_run "$recipe" "$run" "${seed_args[@]}" "$@"
    fi
    runs+=("$run")
  done
done
while (($(jobs -rp | wc -l) > 0)); do wait -n || failed=1; done
if ((failed)); then
  echo "compare-kjv: a run failed; see runs/kjv-small-*.log" >&2
  exit 1
fi
echo "== comparing ${runs[*]}"
$MT compare "${runs[@]}" --out runs/compare-kjv
