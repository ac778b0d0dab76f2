#!/usr/bin/env bash
# Bad input gets a clean, named error: each case must exit non-zero (never by a signal, never
# hang) with a message naming the file (file:line), the dotted recipe key or the CLI option, and
# what is wrong. Pre-flight settings are refused by `validate` and by `train` before the first step.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"

cd "$W"
make_tiny_data
cat > good.yaml <<YAML
model: {layers: 1, d_model: 32, heads: 2, seq_len: 16, vocab_size: 300, dtype: f32}
data: {train: data/train_*.bin, val: data/val_*.bin, tokenizer: tok.bpe}
schedule: {warmup_steps: 0}
train: {steps: 1, micro_batch: 2, grad_accum: 1, device: cpu, run_dir: run, sample_every: 1, sample_tokens: 2}
log: {progress: plain}
YAML
"$MT" validate good.yaml >/dev/null && ok "the good recipe validates" || bad "good recipe: $("$MT" validate good.yaml 2>&1)"

# both DESCRIPTION PATTERN ARGS...: `validate` and `train` (given the same recipe arguments) both refuse, naming PATTERN.
both() {
  local what=$1 pattern=$2
  shift 2
  expect_error "validate: $what" "$pattern" timeout 60 "$MT" validate "$@"
  expect_error "train: $what" "$pattern" timeout 60 "$MT" train "$@"
}

# ---- pre-flight: settings that could only fail at run time ----
if [[ ! -e /dev/nvidiactl ]]; then
  both "train.device: cuda without a GPU" "command line: train.device: cuda, but no GPU is available" good.yaml train.device=cuda
fi
sed 's/^log:/dist: {ep: 3}\nlog:/' good.yaml >ep.yaml
both "dist.ep not dividing the ranks, at file:line" "ep.yaml:5: dist.ep: dist.ep = 3 does not divide the job's 1 ranks" ep.yaml
touch afile
both "train.run_dir that is a file" "train.run_dir = 'afile' is not a folder" good.yaml train.run_dir=afile
both "train.run_dir under a file" "afile' is not a folder" good.yaml train.run_dir=afile/run
if [[ $(id -u) -ne 0 ]]; then
  mkdir -p locked && chmod 500 locked
  both "train.run_dir that cannot be written" "is not writable" good.yaml train.run_dir=locked/run
fi
both "missing data.tokenizer" "command line: data.tokenizer: cannot open tokenizer 'nope.bpe'" good.yaml data.tokenizer=nope.bpe
mkdir -p emptydir
both "data.tokenizer folder without GPT-2's files" "encoder.json' is missing" good.yaml data.tokenizer=emptydir
both "missing distill.teacher" "distill.teacher: checkpoint path runs/none does not exist" good.yaml distill.teacher=runs/none
both "data.train glob that matches nothing" "data.train: no file matches 'nothing/*.bin'" good.yaml "data.train=nothing/*.bin"
both "data.val glob that matches nothing" "data.val: no file matches 'nothing/*.bin'" good.yaml "data.val=nothing/*.bin"
both "checkpoint.resume naming a missing file" "checkpoint.resume: checkpoint path gone.h5 does not exist" good.yaml checkpoint.resume=gone.h5
both "train.sample_prompt that encodes to no tokens" "train.sample_prompt '' encodes to no tokens" good.yaml 'train.sample_prompt=""'
both "tokenizer size differing from model.vocab_size when sampling" "has 300 tokens but model.vocab_size = 400" good.yaml model.vocab_size=400
both "schedule.warmup_steps >= train.steps names both keys" "schedule.warmup_steps = 5 must be less than train.steps = 5" \
  good.yaml schedule.warmup_steps=5 train.steps=5
both "a model too large for RAM names its size and keys" "GiB weights and gradients" good.yaml model.d_model=65536 model.layers=64
both "activations too large for RAM name train.micro_batch and model.seq_len" "most of it comes from train.micro_batch = 4096, model.seq_len = 1048576" \
  good.yaml train.micro_batch=4096 model.seq_len=1048576
both "sizes that overflow int64 name the keys" "model.vocab_size = 2000000000 x model.d_model = 1000000000" \
  good.yaml model.vocab_size=2000000000 model.d_model=1000000000 model.heads=1
expect_error "estimate: sizes that overflow int64 name the keys" "beyond what 64-bit sizes can count" \
  "$MT" estimate good.yaml model.vocab_size=2000000000 model.d_model=1000000000 model.heads=1
# with_memory_limit KB COMMAND...: runs COMMAND under `ulimit -v KB`.
with_memory_limit() { bash -c 'ulimit -v "$0" && exec "$@"' "$@"; }
for cmd in validate train; do  # 1.5 GB of address space: MPI and the program start, the model does not fit
  expect_error "$cmd: a model too large for the address-space limit (ulimit -v)" \
    "GiB of this process's address-space limit (ulimit -v)" \
    with_memory_limit 1500000 "$MT" $cmd good.yaml model.d_model=2048 model.layers=8
done
# A std::bad_alloc that nothing before it could foresee names the command that was running.
head -c 1024 data/val_000000.bin >huge.bin
printf '\x00\x94\x35\x77' | dd of=huge.bin bs=1 seek=8 conv=notrunc status=none  # 2e9 tokens
truncate -s $((1024 + 2 * 2000000000)) huge.bin                                   # sparse: no disk used
# 3 GB of address space: a CUDA build maps over 1 GB of libraries at start-up (OpenBLAS's start-up
# retries forever when its buffers do not fit), and 4 GB of tokens fit in neither build.
expect_error "out of memory names the command" "out of memory (an allocation failed) while running 'moetrain data info huge.bin" \
  with_memory_limit 3000000 timeout 60 "$MT" data info huge.bin --vocab-size 300
rm -f huge.bin

# ---- data files ----
mkfifo fifo.bin
both "a FIFO as a shard is refused, not opened (it would block)" "token shard 'fifo.bin': expected a regular file, got a FIFO" \
  good.yaml data.train=fifo.bin
both "a FIFO as a tokenizer" "tokenizer 'fifo.bin': expected a regular file, got a FIFO" good.yaml data.tokenizer=fifo.bin
both "a device as a shard" "token shard '/dev/zero': expected a regular file, got a character device" good.yaml data.train=/dev/zero
expect_error "data info on a FIFO" "expected a regular file, got a FIFO" timeout 60 "$MT" data info fifo.bin
head -c 1024 data/train_000000.bin >empty.bin
printf '\x00\x00\x00\x00' | dd of=empty.bin bs=1 seek=8 conv=notrunc status=none
expect_error "data info on a shard with zero tokens" "token shard 'empty.bin': expected a positive token count in the header, got 0 (an empty shard)" \
  "$MT" data info empty.bin
both "a shard with zero tokens" "empty.bin" good.yaml data.train=empty.bin
head -c $((1024 + 2 * 10)) data/train_000000.bin >short.bin
printf '\x0a\x00\x00\x00' | dd of=short.bin bs=1 seek=8 conv=notrunc status=none
both "a shard shorter than one sequence (+1), by name" \
  "data.train: 1 shard(s) matching 'short.bin' (short.bin) hold 10 tokens = 0 windows of model.seq_len + 1 = 17 tokens" \
  good.yaml data.train=short.bin
head -n 7 tok.bpe >trunc.bpe
expect_error "a truncated tokenizer names file:line" "trunc.bpe:8: expected" "$MT" data tokenize --input good.yaml --tokenizer trunc.bpe --out o
(cat tok.bpe; sed -n 6p tok.bpe) | sed '5s/.*/merges 44/;2s/.*/vocab_size 301/;3s/.*/eot_id 300/' >dup.bpe
expect_error "a duplicate merge names file:line" "dup.bpe:49: duplicate merge" "$MT" validate good.yaml data.tokenizer=dup.bpe

# ---- recipes ----
printf 'model:\n  layers: 1\ntrain:\n  sample_prompt: "And God said\n  steps: 3\ncheckpoint: {resume: "auto"}\n' >quote.yaml
expect_error "an unclosed quote names the line where it began" "quote.yaml:4: a quoted string begins on this line" "$MT" validate quote.yaml
printf 'base: emptydir\n' >basedir.yaml
expect_error "base: naming a folder" "basedir.yaml:1: base: recipe file" "$MT" validate basedir.yaml
printf 'base: /dev/zero\n' >basedev.yaml
expect_error "base: naming a device (never ends)" "expected a regular file, got a character device" timeout 60 "$MT" validate basedev.yaml
expect_error "a retired key is refused with its reason" "model.arch was removed" "$MT" validate good.yaml model.arch=llama

# ---- CLI options and commands ----
expect_error "eval --batch 0" "--batch: expected an integer >= 1, got '0'" "$MT" eval run --batch 0
expect_error "eval --steps 0" "--steps: expected an integer >= 1, got '0'" "$MT" eval run --steps 0
expect_error "generate --temperature nan" "--temperature: expected a finite number >= 0, got 'nan'" "$MT" generate run --temperature nan
expect_error "generate --temperature -1" "--temperature: expected a finite number >= 0, got '-1'" "$MT" generate run --temperature -1
expect_error "generate --max-tokens 0" "--max-tokens: expected an integer >= 1, got '0'" "$MT" generate run --max-tokens 0
expect_error "estimate --ranks 0" "--ranks: expected an integer >= 1, got '0'" "$MT" estimate good.yaml --ranks 0
expect_error "data info --vocab-size 0" "--vocab-size: expected an integer in [1, 65536], got '0'" "$MT" data info data/val_000000.bin --vocab-size 0
expect_error "a misspelt command suggests the closest" "unknown command 'trian' (did you mean 'train'?)" "$MT" trian good.yaml

# Nothing above may leave a bare exception text.
finish "bad input gets named errors"
