#!/usr/bin/env bash
# `moetrain bench comm` on 2 CPU ranks: one Markdown row per collective and size (ours and MPI called
# directly, both with positive bus bandwidth), the MoE dispatch row, the busbw formulas stated; bad sizes, one
# rank and a token count that does not split over the ranks refused.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
mpirun --oversubscribe -np 2 "$MT" bench comm --sizes 1MB,4MB --iters 3 --moe-tokens 2048 >comm.md 2>&1 \
  && ok "exit 0" || { bad "bench comm failed"; cat comm.md; }
grep -q "^| collective | size | our busbw (GB/s) | direct busbw (GB/s) | ours / direct |$" comm.md \
  && ok "the table header" || bad "no table header"
POSITIVE='([0-9]*[1-9][0-9]*\.[0-9]+|[0-9]+\.[0-9]*[1-9][0-9]*)'  # a bandwidth above zero, as 9.00 or 0.08
for c in all-reduce all-gather reduce-scatter all-to-all; do
  for s in 1MB 4MB; do
    grep -qE "^\| $c \| $s \| $POSITIVE \| $POSITIVE \| [0-9]+\.[0-9]{2} \|$" comm.md \
      && ok "$c $s: both bandwidths measured" || { bad "$c $s row"; cat comm.md; }
  done
done
grep -qE "^\| MoE dispatch \(mt::all_to_all\) \| 2048 x 768 bf16 \| [0-9.]+ \| [0-9.]+ \| [0-9.]+ \|$" comm.md \
  && ok "the MoE dispatch row" || bad "no MoE dispatch row"
[[ $(grep -c "^|" comm.md) -eq 11 ]] && ok "one table, 9 rows" || bad "$(grep -c "^|" comm.md) table lines"
grep -q "all-reduce algbw \* 2(n-1)/n, all-gather and reduce-scatter algbw \* (n-1)/n, all-to-all algbw \* (n-1)/n" comm.md \
  && grep -q "MPI_Allreduce" comm.md && ok "the busbw formulas and the direct calls are stated" || bad "no formulas"
expect_error "a bad size is refused" "--sizes: expected a size like 1MB" "$MT" bench comm --sizes 3XB
expect_error "one rank is refused" "run it under mpirun with 2 or more ranks" "$MT" bench comm --sizes 1MB
expect_error "an odd token count is refused" "--moe-tokens 3 does not split over 2 ranks" \
  mpirun --oversubscribe -np 2 "$MT" bench comm --sizes 1MB --moe-tokens 3
finish "all bench comm checks passed"
