#!/usr/bin/env bash
# Seeded fuzz of the input readers: mutated recipes, damaged token shards and tokenizer files (a
# byte-level BPE file and a GPT-2 folder), and non-regular files, run through `validate`, `data info`
# and (for a few accepted recipes) a one-step `train`. Every run must end by itself within 60 s
# (no hang), never by a signal, and with a non-zero exit and a "moetrain: error:" message that names
# the damaged input when the mutation is one that must be rejected (the mutations are built so that
# it is known which ones). No message may be a bare exception text (std::..., stoi, vector::...).
# MT_FUZZ_SEED picks another seed; the failing mutation is printed to reproduce it.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
RANDOM=${MT_FUZZ_SEED:-20241204}

cd "$W"
make_tiny_data
mkfifo fifo.bin
mkdir -p emptydir
touch afile
cat > good.yaml <<YAML
model:
  layers: 1
  d_model: 32
  heads: 2
  seq_len: 16
  vocab_size: 300
  dtype: f32
  dropout: 0.0
data:
  train: data/train_*.bin
  val: data/val_*.bin
  tokenizer: tok.bpe
optim:
  name: adamw
  lr: 1.0e-3
  beta1: 0.9
schedule:
  kind: cosine
  warmup_steps: 0
train:
  steps: 1
  micro_batch: 2
  grad_accum: 1
  device: cpu
  run_dir: run
  eval_steps: 1
  sample_every: 1
  sample_tokens: 2
checkpoint:
  keep: 1
log:
  every: 1
  progress: plain
dist:
  zero: 0
YAML
"$MT" validate good.yaml >/dev/null || bad "the unmutated recipe must validate"
cp data/val_000000.bin good.bin
cp -r "$SRC/tests/data/gpt2_tiny" gpt2_good

runs=0 rejected=0 trains=0
# check KNOWN_BAD NAME MUTATION COMMAND...: runs COMMAND with a 60 s limit and applies the rules above.
# NAME is what the message must mention when COMMAND fails; KNOWN_BAD (1/0) says it must fail.
check() {
  local known_bad=$1 name=$2 mutation=$3
  shift 3
  local rc err
  err=$(timeout 60 "$@" 2>&1 >/dev/null)
  rc=$?
  runs=$((runs + 1))
  if [[ $rc -eq 124 ]]; then bad "hang (60 s) on $mutation: $*"; return 1; fi
  if [[ $rc -gt 128 ]]; then bad "signal $((rc - 128)) on $mutation: $*: $err"; return 1; fi
  if [[ $rc -eq 0 ]]; then
    [[ $known_bad -eq 1 ]] && { bad "accepted a bad input ($mutation): $*"; return 1; }
    return 0
  fi
  rejected=$((rejected + 1))
  if [[ "$err" != *"moetrain: error:"* ]]; then bad "no 'moetrain: error:' for $mutation: $err"; return 1; fi
  if [[ "$err" =~ error:\ (std::|basic_string|sto[il]|vector::|bad_alloc|map::at|_M_) ]]; then
    bad "bare exception text for $mutation: $err"; return 1
  fi
  if [[ "$err" != *"$name"* ]]; then bad "the message for $mutation does not name '$name': $err"; return 1; fi
  return 0
}

pick() { local a=("$@"); echo "${a[RANDOM % ${#a[@]}]}"; }
lines=$(wc -l <good.yaml)

# ---- recipes: 200 mutants of good.yaml ----
# set_key FILE KEY VALUE: sets the first "  KEY:" line's value.
set_key() { sed -i "0,/^  $2:.*/s##  $2: $3#" "$1"; }
for ((i = 0; i < 200; ++i)); do
  f="r$i.yaml"
  cp good.yaml "$f"
  known=1
  case $((RANDOM % 14)) in
    0) key=$(pick layers d_model heads seq_len vocab_size steps eval_steps keep every)
       val=$(pick -1 0 abc 1e400 nan 99999999999 "[1, 2]" "{a: 1}" "" "'3'")
       set_key "$f" "$key" "$val"; m="$key: '$val'" ;;
    1) key=$(pick dropout beta1); val=$(pick 1 1.5 -0.1 nan x); set_key "$f" "$key" "$val"; m="$key: $val" ;;
    2) key=$(pick steps train run_dir); sed -i "/^  $key:/d" "$f"; m="no $key" ;;
    3) n=$((RANDOM % lines + 1)); sed -i "${n}a\\  zz$RANDOM: 1" "$f"; m="unknown key after line $n" ;;
    4) sec=$(pick model data optim schedule train checkpoint log dist); sed -i "s/^$sec:/${sec}x:/" "$f"; m="section ${sec}x" ;;
    5) n=$(( (RANDOM % lines) + 1 )); while [[ $(sed -n "${n}p" "$f") != "  "* ]]; do n=$((n % lines + 1)); done
       sed -i "${n}p" "$f"; m="line $n twice" ;;
    6) key=$(pick dtype kind name tokenizer run_dir progress); set_key "$f" "$key" '"unclosed'; m="$key: unclosed quote" ;;
    7) key=$(pick dtype name kind device progress); set_key "$f" "$key" bogus; m="$key: bogus" ;;
    8) case $((RANDOM % 8)) in
         0) set_key "$f" train "nothing/*.bin"; m="data.train matches nothing" ;;
         1) set_key "$f" tokenizer fifo.bin; m="tokenizer is a FIFO" ;;
         2) set_key "$f" tokenizer emptydir; m="tokenizer folder without GPT-2 files" ;;
         3) set_key "$f" train /dev/zero; m="shard is a device" ;;
         4) set_key "$f" run_dir afile; m="run_dir is a file" ;;
         5) set_key "$f" val fifo.bin; m="val shard is a FIFO" ;;
         6) printf 'distill:\n  teacher: runs/none\n' >>"$f"; m="missing teacher" ;;
         7) sed -i 's/^  keep: 1/  keep: 1\n  resume: gone.h5/' "$f"; m="resume names a missing file" ;;
       esac ;;
    9) sed -i "s/^model:/model:\n  arch: gpt/" "$f"; m="retired model.arch" ;;
    10) b=$(pick emptydir /dev/zero "r$i.yaml" nothing.yaml fifo.bin); sed -i "1i base: $b" "$f"; m="base: $b" ;;
    11) case $((RANDOM % 3)) in
          0) set_key "$f" d_model 1048576; m="d_model 1048576 (memory)" ;;
          1) set_key "$f" vocab_size 2000000000; set_key "$f" d_model 1000000000; m="overflowing embedding" ;;
          2) set_key "$f" micro_batch 1000000; set_key "$f" seq_len 1000000; m="huge activations" ;;
        esac ;;
    12) size=$(stat -c %s "$f"); truncate -s $((RANDOM % size)) "$f"; known=0; m="truncated" ;;
    *) size=$(stat -c %s "$f")
       for k in 1 2 3; do printf "\\x$(printf %02x $((RANDOM % 256)))" | dd of="$f" bs=1 seek=$((RANDOM % size)) conv=notrunc status=none; done
       known=0; m="3 random bytes" ;;
  esac
  # Which input the message must name: the recipe, or the command line for none (all set in the file).
  check "$known" "$f" "recipe $f ($m)" "$MT" validate "$f" || { sed 's/^/    /' "$f" | head -40; continue; }
  if [[ $known -eq 0 && $trains -lt 8 ]] && "$MT" validate "$f" >/dev/null 2>&1; then
    trains=$((trains + 1))
    check 0 "$f" "train of accepted recipe $f ($m)" "$MT" train "$f" "train.run_dir=run$i"
  fi
done

# ---- token shards: 60 damaged copies of good.bin ----
size=$(stat -c %s good.bin)
for ((i = 0; i < 60; ++i)); do
  f="s$i.bin"
  cp good.bin "$f"
  known=1
  case $((RANDOM % 7)) in
    0) truncate -s $((RANDOM * 32768 % size + RANDOM % size)) "$f"; truncate -s $(( $(stat -c %s "$f") % size )) "$f"; m="truncated" ;;
    1) head -c $((RANDOM % 100 + 1)) /dev/urandom >>"$f"; m="bytes appended" ;;
    2) v=$(pick 0 1 2); n=$(pick 0 1 -1 2147483647 20240521 $RANDOM)
       [[ $v -eq 2 && $n -eq $(( (size - 1024) / 2 )) ]] && n=0
       [[ $v -eq 0 && $n -eq 20240520 ]] && n=0
       [[ $v -eq 1 && $n -eq 1 ]] && n=2
       printf "$(printf '\\x%02x\\x%02x\\x%02x\\x%02x' $((n & 255)) $((n >> 8 & 255)) $((n >> 16 & 255)) $((n >> 24 & 255)))" \
         | dd of="$f" bs=1 seek=$((4 * v)) conv=notrunc status=none
       m="header int $v = $n" ;;
    3) pos=$((1024 + 2 * (RANDOM % ((size - 1024) / 2)))); printf '\xff\xff' | dd of="$f" bs=1 seek=$pos conv=notrunc status=none
       m="token at byte $pos = 65535" ;;
    *) for k in 1 2 3 4; do printf "\\x$(printf %02x $((RANDOM % 256)))" | dd of="$f" bs=1 seek=$((RANDOM * 32768 % size + RANDOM % size)) conv=notrunc status=none; done
       known=0; m="4 random bytes" ;;
  esac
  [[ $known -eq 1 ]] && cmp -s good.bin "$f" && known=0  # a mutation that changed nothing
  check "$known" "$f" "shard $f ($m)" "$MT" data info "$f" --vocab-size 300
  # train reads only the windows of its one step, so a bad id in another window is not seen there
  train_known=$known
  [[ $m == token* ]] && train_known=0
  [[ $((i % 15)) -eq 0 ]] && check "$train_known" "$f" "train on shard $f ($m)" "$MT" train good.yaml "data.train=$f" "train.run_dir=srun$i"
done
for f in fifo.bin emptydir /dev/zero /dev/null; do
  check 1 "$f" "non-regular shard $f" "$MT" data info "$f"
  check 1 "$f" "non-regular shard $f in train" "$MT" train good.yaml "data.train=$f"
  check 1 "$f" "non-regular tokenizer $f" "$MT" validate good.yaml "data.tokenizer=$f"
done

# ---- tokenizers: 40 damaged copies of tok.bpe and of the GPT-2 folder ----
tsize=$(stat -c %s tok.bpe)
tlines=$(wc -l <tok.bpe)
for ((i = 0; i < 40; ++i)); do
  known=1
  case $((RANDOM % 6)) in
    0) f="t$i.bpe"; head -c $((RANDOM * 32768 % (tsize - 1) + RANDOM % (tsize - 1))) tok.bpe | head -c $((tsize - 2)) >"$f"; m="truncated" ;;
    1) f="t$i.bpe"; n=$((RANDOM % (tlines - 6) + 6)); awk -v n="$n" 'NR == n + 1 { print prev; next } { prev = $0; print }' tok.bpe >"$f"
       m="merge line $((n + 1)) repeats line $n" ;;
    2) f="t$i.bpe"; k=$(pick vocab_size eot_id merges byte_order); sed "s/^$k .*/$k $(pick 7 -1 x 99999999999999999999)/" tok.bpe >"$f"; m="header $k" ;;
    3) f="g$i"; cp -r gpt2_good "$f"; file=$(pick vocab.bpe encoder.json); s=$(stat -c %s "$f/$file")
       truncate -s $((RANDOM % (s - 1))) "$f/$file"; m="$file truncated" ;;
    *) f="t$i.bpe"; cp tok.bpe "$f"
       for k in 1 2; do printf "\\x$(printf %02x $((RANDOM % 256)))" | dd of="$f" bs=1 seek=$((RANDOM * 32768 % tsize + RANDOM % tsize)) conv=notrunc status=none; done
       known=0; m="2 random bytes" ;;
  esac
  [[ -f "$f" ]] && cmp -s tok.bpe "$f" && known=0
  # A GPT-2 folder has 260 tokens, so the model's vocabulary follows it when it loads.
  vocab=300; [[ -d "$f" ]] && vocab=260
  check "$known" "$f" "tokenizer $f ($m)" "$MT" validate good.yaml "data.tokenizer=$f" "model.vocab_size=$vocab"
done

[[ $rejected -ge 200 ]] && ok "$runs runs, $rejected rejected with a named error, $trains accepted mutants trained" \
  || bad "only $rejected of $runs runs were rejected: the mutations are too gentle"
finish "fuzz: no hang, no signal, no silent acceptance, no bare exception"
