#!/usr/bin/env bash
# scripts/gpu-multi.sh on 2 CPU ranks (MT_MULTI_CPU_RANKS=2, a tiny model): the MPI tests' GPU cases start,
# bench comm's table, the equivalence table (dist.ep 1 vs 2, dist.zero 0 vs 1, an ep-2 checkpoint resumed
# at ep 1 and on one rank: all "same") and the scaling table (1 and 2 ranks, dense and MoE-8) in gpu-multi.md.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
OUT=$W MT=$MT MT_MULTI_CPU_RANKS=2 bash "$SRC/scripts/gpu-multi.sh" >run.log 2>&1 \
  && ok "gpu-multi.sh exit 0" || { bad "gpu-multi.sh failed"; cat run.log; }
R=$W/gpu-multi.md
[[ -f $R ]] || { bad "no report"; finish ""; }
grep -q "^| all-reduce | 1MB | " "$R" && grep -q "^| MoE dispatch" "$R" && ok "bench comm's table" || bad "no bench comm table"
[[ $(grep -c "^| .* | same |$" "$R") -eq 4 ]] && ! grep -q DIFFERENT "$R" \
  && ok "ep 2, ZeRO-1 and both resumes give the ep-1 losses" || { bad "equivalences"; cat "$R"; }
grep -qE "^\| expert parallel \| ep1 vs ep2 \| 6 \| " "$R" && grep -qE "^\| ep-2 checkpoint at step 3 resumed \| ep1 vs resumed_1rank \| 3 \| " "$R" \
  && ok "all steps compared (6, and the 3 after the resume)" || bad "step counts"
for m in dense moe-8; do
  grep -qE "^\| $m \| 1 \| [1-9][0-9]* \| 100\.0% \|$" "$R" && grep -qE "^\| $m \| 2 \| [1-9][0-9]* \| [0-9.]+% \|$" "$R" \
    && ok "$m scaling rows" || { bad "$m scaling rows"; cat "$R"; }
done
finish "all gpu-multi checks passed"
