#!/usr/bin/env bash
# Run ON a multi-GPU machine (one rank per GPU; carry .deps from scripts/gpu-prep.sh): builds, runs the MPI
# tests on GPUs, `bench comm`, equivalence runs (dist.ep 1 vs 2 vs 4, dist.zero 0 vs 1, an ep-2 checkpoint
# resumed at ep 1 and on one rank) and the tokens/s scaling of dense and MoE-8 over 1..N GPUs, writing
# Markdown to $OUT/gpu-multi.md. MT_MULTI_CPU_RANKS=N runs the same logic on N CPU ranks with a tiny model
# and the already built MT binary (default build/moetrain): tests/cli/gpu_multi_test.sh.
# Usage: [STEPS=50] scripts/gpu-multi.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SRC=$PWD
OUT=${OUT:-/tmp/mt-out}
mkdir -p "$OUT"
REPORT=$OUT/gpu-multi.md
if [[ -n "${MT_MULTI_CPU_RANKS:-}" ]]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
  N=$MT_MULTI_CPU_RANKS
  MT=$(realpath "${MT:-build/moetrain}")
  TEST_MPI=$(dirname "$MT")/test_mpi
  export GTEST_FILTER=${GTEST_FILTER:-NcclCollectives.*}  # the GPU cases skip on CPU ranks: the wiring only
  STEPS=${STEPS:-6}
  VOCAB=300 MICRO=2 TOL=1e-4 WHAT="$N CPU ranks, tiny model (f32)"
  SHAPE=(model.layers=2 model.d_model=32 model.heads=2 model.seq_len=32 model.vocab_size=$VOCAB model.dtype=f32
         train.device=cpu)
  COMM_ARGS=(--device cpu --sizes 1MB --iters 2 --moe-tokens 1024)
  SCALE_ARGS=(--warmup 1 --steps 2)
else
  source scripts/gpu-env.sh
  gpu_build moetrain test_mpi
  N=$(nvidia-smi -L | wc -l)
  ((N >= 2)) || { echo "gpu-multi: needs 2 or more GPUs, found $N"; exit 1; }
  MT=$SRC/$BUILD/moetrain TEST_MPI=$SRC/$BUILD/test_mpi
  STEPS=${STEPS:-50}
  # bf16 weights and activations: ranks sum in other orders, so losses agree to bf16 rounding (2^-8), not bits.
  VOCAB=50257 MICRO=16 TOL=4e-3 WHAT="$N x $(nvidia-smi --query-gpu=name --format=csv,noheader | head -1), GPT-2 124M shape (bf16)"
  SHAPE=()
  COMM_ARGS=()
  SCALE_ARGS=(--warmup 5 --steps 10)
fi
source scripts/bench-fields.sh
MPI=(mpirun --oversubscribe -np "$N")
W=$(mktemp -d /tmp/mt_multi.XXXXXX)
trap 'rm -rf "$W"' EXIT
HALF=$((STEPS / 2))
fails=0

# Synthetic llm.c token shard (magic 20240520, version 1): a seeded walk over the vocabulary, STEPS batches of
# N x MICRO sequences (+1 token each) and a few to spare.
python3 - "$W/train_000.bin" "$VOCAB" $(((STEPS + 2) * N * MICRO * 1100)) <<'PY'
import array, random, struct, sys
path, vocab, n = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(1234)
t, toks = 0, array.array("H")
for _ in range(n):
    t = (t + rng.choice((1, 2, 3, 7, 11, 31))) % vocab  # learnable: the next token depends on the last
    toks.append(t)
with open(path, "wb") as f:
    f.write(struct.pack("<3i", 20240520, 1, n) + bytes(4 * 253))
    toks.tofile(f)
PY

{
  echo "# moetrain on several ranks: $WHAT"
  echo
} >"$REPORT"

echo "== MPI tests on $N ranks (NCCL cases need one GPU per rank)"
"${MPI[@]}" "$TEST_MPI" >"$OUT/test_mpi.log" 2>&1 && echo "test_mpi: passed" || { echo "test_mpi: FAILED"; tail -20 "$OUT/test_mpi.log"; fails=$((fails + 1)); }
grep -E "^\[  (PASSED|SKIPPED|FAILED)" "$OUT/test_mpi.log" | sort | uniq -c || true

echo "== bench comm"
"${MPI[@]}" "$MT" bench comm ${COMM_ARGS[@]+"${COMM_ARGS[@]}"} >"$W/comm.md" 2>&1 || { cat "$W/comm.md"; fails=$((fails + 1)); }
cat "$W/comm.md" | tee -a "$REPORT"
echo >>"$REPORT"

# [CKPT=K] train NAME RANKS [overrides...]: STEPS steps of the MoE-8 model into $W/NAME (checkpoints every K steps,
# default none: 124M MoE-8 checkpoints are ~5 GB). Dropless:
# which tokens a full expert drops depends on the tokens that share a rank (and on each rank's RTS draws), so
# only dropless runs on different rank counts train the same model.
train() {
  local name=$1 ranks=$2
  shift 2
  mpirun --oversubscribe -np "$ranks" "$MT" train recipes/gpt2-124m.yaml "data.train=$W/train_*.bin" "data.val=$W/train_*.bin" \
    data.tokenizer= ${SHAPE[@]+"${SHAPE[@]}"} moe.experts=8 train.steps="$STEPS" train.global_batch=$((N * MICRO)) \
    train.micro_batch=$MICRO moe.drop_tokens=false schedule.warmup_steps=5 train.eval_every=0 train.sample_every=0 checkpoint.every=${CKPT:-0} \
    log.every=1 log.progress=plain dist.timeout=120 train.run_dir="$W/$name" "$@" >"$W/$name.log" 2>&1 \
    || { echo "train $name failed:"; tail -5 "$W/$name.log"; fails=$((fails + 1)); }
}
# same CHECK REFERENCE OTHER...: the largest relative loss difference of each OTHER against REFERENCE at the
# steps OTHER logged, as table rows.
same() {
  python3 - "$TOL" "$@" <<'PY' | tee -a "$REPORT"
import json, sys
tol, check, ref, others = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4:]
def losses(run):
    try: return {r["step"]: r["loss"] for r in map(json.loads, open(run + "/metrics.jsonl")) if "loss" in r}
    except OSError: return {}
a = losses(ref)
for other in others:
    b = losses(other)
    worst = max((abs(a[s] - b[s]) / abs(a[s]) for s in b if s in a), default=float("inf"))
    verdict = "same" if b and set(b) <= set(a) and worst <= tol else "DIFFERENT"
    print(f"| {check} | {ref.rsplit('/', 1)[1]} vs {other.rsplit('/', 1)[1]} | {len(b)} | {worst:.2e} | {tol:g} | {verdict} |")
PY
}

echo "== equivalence runs ($STEPS steps, MoE-8)"
train ep1 "$N" dist.ep=1
CKPT=$HALF train ep2 "$N" dist.ep=2
((N >= 4)) && train ep4 "$N" dist.ep=4
train zero1 "$N" dist.ep=1 dist.zero=1
ckpt=$(printf "$W/ep2/checkpoints/step_%08d.h5" "$HALF")
train resumed_ep1 "$N" dist.ep=1 checkpoint.resume="$ckpt"
train resumed_1rank 1 dist.ep=1 checkpoint.resume="$ckpt"
{
  echo "| check | runs | steps compared | max relative loss difference | tolerance | result |"
  echo "|---|---|---:|---:|---:|---|"
} >>"$REPORT"
same "expert parallel" "$W/ep1" "$W/ep2" $( ((N >= 4)) && echo "$W/ep4")
same "ZeRO-1" "$W/ep1" "$W/zero1"
same "ep-2 checkpoint at step $HALF resumed" "$W/ep1" "$W/resumed_ep1" "$W/resumed_1rank"
grep -q "DIFFERENT" "$REPORT" && fails=$((fails + 1))
echo >>"$REPORT"

echo "== scaling (bench step, $MICRO sequences per rank)"
{
  echo "| model | ranks | tok/s | efficiency tok/s_N / (N tok/s_1) |"
  echo "|---|---:|---:|---:|"
} >>"$REPORT"
for model in dense moe-8; do
  base=
  for ((n = 1; n <= N; n *= 2)); do
    args=(recipes/gpt2-124m.yaml ${SHAPE[@]+"${SHAPE[@]}"} train.global_batch=$((n * MICRO)) train.micro_batch=$MICRO)
    # MoE-8 splits its experts over the ranks (dist.ep = ranks).
    [[ $model == moe-8 ]] && args+=(moe.experts=8 dist.ep=$n)
    mpirun --oversubscribe -np $n "$MT" bench step "${args[@]}" "${SCALE_ARGS[@]}" >"$W/scale-$model-$n.md" 2>&1 \
      || { echo "bench step $model on $n failed:"; tail -5 "$W/scale-$model-$n.md"; fails=$((fails + 1)); }
    tps=$(field "$W/scale-$model-$n.md" bench-step tokens_per_s)
    [[ $tps == - ]] && tps=0
    base=${base:-$tps}
    awk -v m=$model -v n=$n -v t="$tps" -v b="$base" \
      'BEGIN { printf "| %s | %d | %.0f | %.1f%% |\n", m, n, t, (b > 0 ? 100 * t / (n * b) : 0) }' | tee -a "$REPORT"
  done
done
echo
echo "report: $REPORT"
((fails == 0)) || { echo "gpu-multi: $fails step(s) failed"; exit 1; }
