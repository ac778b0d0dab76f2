#!/usr/bin/env bash
# Run ON the GPU machine (no network; carry .deps from scripts/gpu-prep.sh): builds moetrain, then for
# each row runs `moetrain bench step` and bench/torch_ref.py (eager, torch.compile) on random tokens and
# prints one Markdown table: tokens/s, moetrain / compile, MFU and peak memory of each. Results stay in
# build-gpu/bench-vs-torch (kept while the machine is), so a run of some ROWS prints the table of every
# row measured so far; moetrain's step profiles are step-<row>.md there and, with the PyTorch logs, in
# $OUT/bench-vs-torch-logs.tgz (dense-124m's and moe-8's are printed after the table).
# With ATTENTION=1 (the default) it then times causal attention: `moetrain bench ops`' attention rows beside
# bench/torch_attention.py (each PyTorch SDPA backend) on the same shapes, in one more table.
# Usage: [ATTENTION=0|1] [ROWS="dense-124m moe-8"] [WARMUP=10] [STEPS=20] [COMPILE_SCOPE=blocks|model] [MT_OVERRIDES="k=v ..."]
#        scripts/bench-vs-torch.sh   (MT_OVERRIDES: recipe overrides added to every moetrain row)
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
ALL_ROWS="dense-124m moe-8 moe-32 pr-moe dense-350m pr-moe-350m"
ROWS=${ROWS-$ALL_ROWS}  # unset: every row; empty: none (ATTENTION only)
WARMUP=${WARMUP:-10}
STEPS=${STEPS:-20}
COMPILE_SCOPE=${COMPILE_SCOPE:-model}
TORCH=$(python3 -c "import torch; assert torch.cuda.is_available(); print(torch.__version__)") \
  || { echo "bench-vs-torch: needs python3 with a CUDA PyTorch"; exit 1; }
PY_LIBS=${LD_LIBRARY_PATH:-}  # PyTorch runs without the carried .debs' libraries in its path
source scripts/gpu-env.sh
gpu_build moetrain
RES=$BUILD/bench-vs-torch
mkdir -p "$RES"

# moetrain's recipe and overrides for a row: the shapes of MODELS in bench/torch_ref.py.
row_args() {
  local b124=(train.global_batch=16 train.micro_batch=16) b350=(train.global_batch=8 train.micro_batch=8)
  case $1 in
    dense-124m) ARGS=(recipes/gpt2-124m.yaml "${b124[@]}") ;;
    moe-8) ARGS=(recipes/gpt2-124m.yaml "${b124[@]}" moe.experts=8) ;;
    moe-32) ARGS=(recipes/gpt2-124m.yaml "${b124[@]}" moe.experts=32) ;;
    pr-moe) ARGS=(recipes/gpt2-124m.yaml "${b124[@]}" "moe.experts=[16,16,16,16,32,32]" moe.mlp_type=residual) ;;
    dense-350m) ARGS=(recipes/dense-350m.yaml "${b350[@]}") ;;
    pr-moe-350m) ARGS=(recipes/pr-moe-350m.yaml "${b350[@]}") ;;
    *) echo "bench-vs-torch: unknown row $1"; exit 1 ;;
  esac
}

source scripts/bench-fields.sh
kilo() { [[ $1 == - ]] && echo - || awk -v x="$1" 'BEGIN { printf "%.1fK", x / 1000 }'; }
pct() { [[ $1 == - ]] && echo - || awk -v x="$1" 'BEGIN { printf "%.1f%%", 100 * x }'; }
# "steps / warm-up | overrides" of a row, as the run that measured it wrote them.
settings() { cat "$RES/settings-$1" 2>/dev/null || echo "- / - | -"; }
ratio() { [[ $1 == - || $2 == - ]] && echo - || awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2fx", a / b }'; }

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
for row in $ROWS; do
  row_args "$row"
  read -r -a extra <<<"${MT_OVERRIDES:-}"
  ARGS+=(${extra[@]+"${extra[@]}"})
  echo "== $row: moetrain bench step ${ARGS[*]}"
  echo "$STEPS / $WARMUP | ${extra[*]:--}" >"$RES/settings-$row"  # this row's table cells
  timeout 300 $BUILD/moetrain bench step "${ARGS[@]}" --warmup "$WARMUP" --steps "$STEPS" >"$RES/step-$row.md" 2>&1 \
    || { echo "moetrain failed:"; tail -5 "$RES/step-$row.md"; }
  for mode in eager compile; do
    echo "== $row: torch $mode"
    LD_LIBRARY_PATH=$PY_LIBS timeout 300 python3 bench/torch_ref.py --model "$row" --mode "$mode" --compile-scope "$COMPILE_SCOPE" \
      --warmup "$WARMUP" --steps "$STEPS" >"$RES/torch-$row-$mode.log" 2>&1 \
      || { echo "torch $mode failed:"; tail -5 "$RES/torch-$row-$mode.log"; }
    grep -v "^torch-ref:" "$RES/torch-$row-$mode.log" | tail -1 || true
  done
done

{
  echo
  echo "One $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1); each row's timed steps / warm-up steps (and" \
    "moetrain's MT_OVERRIDES) in its last columns;" \
    "random tokens; bf16 (moetrain: bf16 weights + f32 masters; PyTorch: autocast over f32 weights);" \
    "PyTorch $TORCH, torch.compile scope: $COMPILE_SCOPE. MFU = FLOPs/token x tok/s / 989 TFLOP/s, FLOPs/token =" \
    "6 N_active_non_embedding + 6 V d + 12 L d T. Peak memory: allocated bytes (not reserved)."
  echo
  echo "| model | moetrain tok/s | eager tok/s | compile tok/s | moetrain / compile | MFU moetrain | MFU eager |" \
    "MFU compile | peak GiB moetrain | peak GiB eager | peak GiB compile | steps / warm-up | moetrain overrides |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---|"
  for row in $ALL_ROWS; do
    m=$RES/step-$row.md e=$RES/torch-$row-eager.log c=$RES/torch-$row-compile.log
    [[ -e $m || -e $e ]] || continue
    mt=$(field "$m" bench-step tokens_per_s) et=$(field "$e" torch-ref tokens_per_s) ct=$(field "$c" torch-ref tokens_per_s)
    echo "| $row | $(kilo "$mt") | $(kilo "$et") | $(kilo "$ct") | $(ratio "$mt" "$ct") |" \
      "$(pct "$(field "$m" bench-step mfu)") | $(pct "$(field "$e" torch-ref mfu)") | $(pct "$(field "$c" torch-ref mfu)") |" \
      "$(field "$m" bench-step peak_gib) | $(field "$e" torch-ref peak_gib) | $(field "$c" torch-ref peak_gib) |" \
      "$(settings "$row") |"
  done
} | tee "$RES/bench-vs-torch.md"
if [[ ${ATTENTION:-1} == 1 ]]; then
  echo "== attention: moetrain bench ops, bench/torch_attention.py"
  timeout 300 $BUILD/moetrain bench ops >"$RES/bench-ops.md" 2>&1 || { echo "bench ops failed:"; tail -5 "$RES/bench-ops.md"; }
  LD_LIBRARY_PATH=$PY_LIBS timeout 300 python3 bench/torch_attention.py >"$RES/torch-attention.md" 2>&1 \
    || { echo "torch_attention failed:"; tail -5 "$RES/torch-attention.md"; }
  # moetrain's rate (TFLOP/s) of a bench ops row: "| op | size | dtype | ms | rate TFLOP/s | % |".
  ours() { awk -F'|' -v op="$1" -v size=" $2 " 'index($2, op) && $3 == size { split($6, r, " "); print r[1]; exit }' "$RES/bench-ops.md"; }
  {
    echo
    echo "Causal bf16 attention, TFLOP/s (forward 2 B H T^2 D, backward 2.5x): moetrain's cuDNN wrapper (backward"
    echo "deterministic, the default, and with atomic dQ) against PyTorch's fastest SDPA backend on this GPU, same call."
    echo
    echo "| shape | dir | moetrain cuDNN | moetrain cuDNN atomic dQ | moetrain flash | PyTorch best | moetrain / PyTorch |"
    echo "|---|---|---:|---:|---:|---:|---:|"
    while read -r shape dir backend rate; do
      size=${shape//_/ }
      if [[ $dir == fwd ]]; then
        c=$(ours "attention fwd (cudnn)" "$size") a=- f=$(ours "attention fwd (flash)" "$size")
      else
        c=$(ours "bwd (cudnn, deterministic)" "$size") a=$(ours "bwd (cudnn, atomic dQ)" "$size")
        f=$(ours "attention bwd (flash)" "$size")
      fi
      echo "| $size | $dir | ${c:--} | $a | ${f:--} | $rate ($backend) | $(ratio "${c:--}" "$rate") |"
    done < <(sed -n 's/^torch-attention: shape=\(\S*\) dir=\(\S*\) best_backend=\(\S*\) best_tflops=\(\S*\)$/\1 \2 \3 \4/p' \
               "$RES/torch-attention.md")
  } | tee -a "$RES/bench-vs-torch.md"
fi
cp "$RES/bench-vs-torch.md" "$OUT"/
tar czf "$OUT/bench-vs-torch-logs.tgz" -C "$RES" .  # one file: the device tool brings back at most 8

for row in dense-124m moe-8; do
  [[ " $ROWS " == *" $row "* ]] && { echo; cat "$RES/step-$row.md"; }
done
exit 0
