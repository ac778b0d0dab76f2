#!/usr/bin/env bash
# Quickstart: set-up, the King James Bible as a demo corpus, a BPE tokenizer and token shards,
# a small model trained on CPU (loss falling, samples on the way), and a generated sample at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
# Idle OpenMP threads sleep instead of spinning: spinning threads starve each other on a busy machine.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# Training here runs on the CPU; without a GPU, skip compiling the CUDA backend (minutes on 2 cores).
if ! nvidia-smi -L >/dev/null 2>&1; then export MT_CUDA=${MT_CUDA:-OFF}; fi
MT_BUILD_TARGETS=moetrain scripts/setup.sh
MT=build/moetrain
mkdir -p data/kjv
if [[ ! -s data/kjv/kjv.txt ]]; then
  # One verse per line; drop the "Ge1:1" references so the model learns the text itself.
  bible -f "Gen1:1-Rev22:21" | sed -E 's/^[^ ]+ //' > data/kjv/kjv.txt
fi
echo "== the corpus: $(wc -c < data/kjv/kjv.txt) bytes of the King James Bible"
head -n 5 data/kjv/kjv.txt
if [[ ! -s data/kjv/tokenizer.bpe ]]; then
  $MT data train-tokenizer --input data/kjv/kjv.txt --vocab-size 4096 --out data/kjv/tokenizer.bpe
fi
if ! ls data/kjv/train_*.bin >/dev/null 2>&1; then
  $MT data tokenize --input data/kjv/kjv.txt --tokenizer data/kjv/tokenizer.bpe --out data/kjv --val-fraction 0.02
fi
echo "== training recipes/quickstart.yaml on CPU (Ctrl-C saves a checkpoint; run again to resume)"
$MT train recipes/quickstart.yaml "$@"
echo "== a sample from the trained model"
$MT generate runs/quickstart --prompt "And God said" --max-tokens 60 --temperature 0.8 --top-k 40 --seed 1
