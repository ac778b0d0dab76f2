#!/usr/bin/env bash
# Data mixtures end to end: data.train as a list of {path, weight} trains on 2 ranks, logs each
# source's tokens in metrics.jsonl (summing to the run's tokens), resumes bit-exactly from a
# checkpoint; bad entries are refused naming the dotted key (data.train[1].weight).
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
"$MT" data train-tokenizer --input "$SRC/tests/data/kjv_genesis_excerpt.txt" --vocab-size 300 --out tok.bpe >/dev/null \
  || bad "train-tokenizer"
"$MT" data tokenize --input "$SRC/tests/data/kjv_genesis_excerpt.txt" --tokenizer tok.bpe --out data \
  --val-fraction 0.1 --shard-size 4000 >/dev/null || bad "tokenize"
cat > mix.yaml <<YAML
model: {layers: 2, d_model: 32, heads: 2, seq_len: 32, vocab_size: 300, dtype: f32, dropout: 0.1}
moe: {experts: 4, every: 2}
data:
  train: [{path: "data/train_00000[01].bin", weight: 1}, {path: "data/train_00000[2-5].bin", weight: 3}]
optim: {lr: 3.0e-3}
schedule: {warmup_steps: 2}
train: {steps: 8, global_batch: 8, micro_batch: 2, device: cpu}
checkpoint: {every: 4}
log: {progress: plain, every: 1}
dist: {timeout: 60}
YAML
mpirun --oversubscribe -np 2 "$MT" train mix.yaml train.run_dir=full >full.log 2>&1 || { bad "mixture run"; tail -5 full.log; }
python3 - full/metrics.jsonl <<'PY' && ok "metrics.jsonl: source0_tokens + source1_tokens = tokens, about 1:3" || bad "per-source tokens in metrics.jsonl"
import json, sys
rows = [r for r in map(json.loads, open(sys.argv[1])) if "loss" in r]
assert len(rows) == 8, rows
for r in rows: assert r["source0_tokens"] + r["source1_tokens"] == r["tokens"], r
last = rows[-1]
assert 0.1 < last["source0_tokens"] / last["tokens"] < 0.45, last  # 64 sequences at weight 1/4
PY
mkdir -p resumed/checkpoints && cp full/checkpoints/step_00000004.h5 resumed/checkpoints/ \
  && echo step_00000004.h5 >resumed/checkpoints/latest
mpirun --oversubscribe -np 2 "$MT" train mix.yaml train.run_dir=resumed >resumed.log 2>&1 \
  || { bad "mixture resume"; tail -5 resumed.log; }
grep -q "resumed from" resumed.log || bad "the second run did not resume"
python3 - full/metrics.jsonl resumed/metrics.jsonl <<'PY' && ok "a mixture run resumed at step 4 repeats steps 5-8 bit-exactly" || bad "resumed mixture differs"
import json, sys
def rows(p): return {r["step"]: r for r in map(json.loads, open(p)) if "loss" in r}
a, b = rows(sys.argv[1]), rows(sys.argv[2])
for s in range(5, 9):
    for k in ("loss", "source0_tokens", "source1_tokens"):
        assert a[s][k] == b[s][k], (s, k, a[s][k], b[s][k])
PY
# A checkpoint of the mixture does not resume a single-glob recipe (its positions would be lost).
mkdir -p single/checkpoints && cp full/checkpoints/step_00000004.h5 single/checkpoints/ && echo step_00000004.h5 >single/checkpoints/latest
expect_error "a mixture checkpoint into a one-source recipe" "holds the positions of 2 data source(s), but data.train lists 1" \
  "$MT" train mix.yaml train.run_dir=single "data.train=data/train_*.bin"

expect_error "a weight of 0" "data.train[1].weight: 0 is out of range; expected > 0" \
  "$MT" train mix.yaml train.run_dir=x "data.train=[{path: a.bin}, {path: b.bin, weight: 0}]"
expect_error "a misspelt key" "data.train[0]: unknown key 'wieght' (did you mean 'weight'?)" \
  "$MT" train mix.yaml train.run_dir=x "data.train=[{path: a.bin, wieght: 2}]"
expect_error "an entry without a path" "data.train[0]: missing 'path'" \
  "$MT" train mix.yaml train.run_dir=x "data.train=[{weight: 2}]"
expect_error "an empty list" "data.train: the list is empty" "$MT" train mix.yaml train.run_dir=x "data.train=[]"
expect_error "a source matching no shard" "data.train[1].path: no file matches 'nothing_*.bin'" \
  "$MT" train mix.yaml train.run_dir=x "data.train=[{path: data/train_000000.bin}, {path: nothing_*.bin}]"
finish "data mixtures: weights, per-source tokens, exact resume, errors by key"
