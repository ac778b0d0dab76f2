#!/usr/bin/env bash
# `data tokenize` streamed over threads: the shards are byte-identical to those of the whole-file
# implementation this replaced (hashes stored below, made by commit 01cbaf6 on the same inputs) for any
# --threads and --chunk-size; progress goes to stderr; peak memory does not grow with the input.
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
python3 - "$SRC/tests/data/kjv_genesis_excerpt.txt" <<'PY'
import sys
t = open(sys.argv[1], encoding="utf-8").read()
open("in1.txt", "w").write(t[:15000] + "<|endoftext|>" + t[15000:30000] + "<|endoftext|><|endoftext|>" + t[30000:])
open("in2.txt", "w").write(t[:9000])
lines, out = t.split("\n"), []  # in3.txt: whitespace next to newlines, where a careless cut changes tokens
for i, l in enumerate(lines):
    if i % 3 == 0: l = "  " + l          # indented: a space run after the newline
    if i % 7 == 0: l = l + " "           # a trailing space before the newline
    if i % 11 == 0: l = l + "\r"         # CRLF
    if i % 13 == 0: l = "\t" + l
    out.append(l)
    if i % 5 == 0: out.append("")        # a blank line: two newlines in a row
    if i % 17 == 0: out.append("\u00a0\u3000")  # a line of Unicode spaces
open("in3.txt", "w", encoding="utf-8").write("\n".join(out))
open("big.txt", "w").write(t * 1600)   # 64 MB
open("small.txt", "w").write(t * 80)   # 3.2 MB
PY
# Trained on in3.txt, the BPE merges a newline with the spaces after it, which a cut between them would split.
"$MT" data train-tokenizer --input in3.txt --vocab-size 400 --out tok.bpe >/dev/null || bad "train-tokenizer"
digest() { (cd "$1" && for f in *; do echo "$f $(sha256sum <"$f")"; done) | sha256sum | cut -d' ' -f1; }
expect_digest() {  # WHAT DIGEST VAL_FRACTION SHARD_SIZE TOKENIZE_ARGS...
  local what=$1 want=$2 frac=$3 size=$4
  shift 4
  rm -rf out
  if "$MT" data tokenize --input in1.txt in2.txt in3.txt --tokenizer tok.bpe --out out --val-fraction "$frac" --shard-size "$size" \
    "$@" >out.log 2>err.log && [[ $(digest out) == "$want" ]]; then ok "$what"; else bad "$what: $(ls out | tr '\n' ' ') $(cat err.log)"; fi
}
with_val=8c9121b2a9cfac386aeefaa8242adcf46d4fdfa837dfababc0e63567dba37a83    # 12 train + 3 val shards
no_val=d62fca15393e4a1d54777bf8ab4ff68d839ed03e235b4d44bcf01986ea71fdf6      # 9 train shards
expect_digest "1 thread, one chunk per document: the stored shards" $with_val 0.15 3000 --threads 1
expect_digest "4 threads, 700-byte chunks: the same bytes" $with_val 0.15 3000 --threads 4 --chunk-size 700
expect_digest "3 threads, 64-byte chunks: the same bytes" $with_val 0.15 3000 --threads 3 --chunk-size 64
expect_digest "no validation split, 2 threads, 500-byte chunks" $no_val 0 5000 --threads 2 --chunk-size 500
grep -q "tokenize: .* (100%), 5 documents, 42193 tokens" err.log && ok "progress on stderr" || bad "progress: $(cat err.log)"
[[ -z $(ls out | grep -v '^train_00000[0-8].bin$') ]] && ok "no temporary files left" || bad "left in out/: $(ls out)"

# peak_rss_kb INPUT: tokenizes INPUT on 2 threads and prints the peak resident set in kB (ru_maxrss).
# Holding the token stream would add >= 57 MB on big.txt (28.6M more tokens at 2 bytes); malloc's
# arenas and mmap threshold move the peak by up to ~10 MB from run to run, so the bar is 32 MB.
peak_rss_kb() {
  python3 - "$MT" "$1" <<'PY'
import resource, subprocess, sys
mt, inp = sys.argv[1], sys.argv[2]
subprocess.run([mt, "data", "tokenize", "--input", inp, "--tokenizer", "tok.bpe", "--out", "rss_" + inp,
                "--threads", "2", "--val-fraction", "0.01", "--shard-size", "1000000"], check=True,
               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
PY
}
small_kb=$(peak_rss_kb small.txt) || bad "tokenize small.txt"
big_kb=$(peak_rss_kb big.txt) || bad "tokenize big.txt"
if [[ -n "$small_kb" && -n "$big_kb" ]] && (( big_kb - small_kb < 32768 )); then
  ok "peak RSS on 64 MB of text ($big_kb kB) within 32 MB of that on 3.2 MB ($small_kb kB)"
else
  bad "peak RSS grows with the input: ${big_kb:-?} kB vs ${small_kb:-?} kB"
fi
finish "data tokenize: streamed, threaded, byte-identical"
