#!/usr/bin/env bash
# `moetrain bench step` on CPU: a tiny dense and a tiny PR-MoE recipe each give the step table (every
# category, the remainder and the step row, shares summing to 100%) and the machine-readable summary line.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
cat > tiny.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 16, vocab_size: 300, dtype: f32}
data: {train: unused_*.bin}
train: {steps: 10, global_batch: 4, micro_batch: 2, device: cpu, run_dir: unused, eval_every: 0}
YAML

check_table() {  # $1: log file, $2: what ran
  local log=$1
  grep -q "^| GEMM | " "$log" && grep -q "^| MoE router" "$log" && grep -q "^| optimizer" "$log" \
    && grep -q "^| outside the timed calls (host) | " "$log" && grep -q "^| step (instrumented) | " "$log" \
    && ok "$2: the category table" || { bad "$2: no category table"; cat "$log"; }
  # The category rows and the remainder add up to the step (shares within rounding of 100%).
  local total
  total=$(awk -F'|' '$2 ~ /step \(instrumented\)/ { exit } /^\| / && $3 ~ /[0-9]/ { gsub(/[ %]/, "", $4); s += $4 } END { print int(s + 0.5) }' "$log")
  [[ $total -ge 98 && $total -le 102 ]] && ok "$2: shares sum to ${total}%" || bad "$2: shares sum to ${total}%"
  grep -q "^| op (top [0-9]*) | " "$log" && grep -q "^| matmul | " "$log" && ok "$2: the per-op table" || bad "$2: no per-op table"
  grep -qE "^bench-step: step_ms=[0-9.]+ tokens_per_s=[0-9.]+ mfu=0.0000 peak_gib=[0-9.]+ peak_bytes=[0-9]+ exposed_comm_ms=[0-9.]+$" "$log" \
    && ok "$2: the summary line" || bad "$2: no summary line"
}

"$MT" bench step tiny.yaml --steps 2 --warmup 1 >dense.log 2>&1 && ok "dense: exit 0" || { bad "dense: failed"; cat dense.log; }
check_table dense.log dense
# Calls are counted: a dense model has GEMMs and no MoE routing.
grep -qE "^\| GEMM \| [0-9.]+ \| [0-9.]+% \| [1-9][0-9]* \|" dense.log && ok "dense: GEMM calls counted" \
  || bad "dense: no GEMM calls"
grep -qE "^\| MoE router .* \| 0 \|$" dense.log && ok "dense: no router calls" || bad "dense: router calls in a dense model"

"$MT" bench step tiny.yaml "moe.experts=[4]" moe.mlp_type=residual --steps 2 --warmup 1 >moe.log 2>&1 \
  && ok "PR-MoE: exit 0" || { bad "PR-MoE: failed"; cat moe.log; }
check_table moe.log PR-MoE
for row in "MoE router" "MoE dispatch" "MoE combine"; do
  grep -qE "^\| $row .* \| [1-9][0-9]* \|$" moe.log && ok "PR-MoE: $row calls counted" || bad "PR-MoE: no $row calls"
done
finish "all bench step checks passed"
