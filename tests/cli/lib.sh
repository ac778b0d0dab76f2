# Shared by the tests/cli/*_test.sh scripts (sourced, not a test): a scratch folder removed on exit,
# ok/bad/expect_error checks, tiny tokenized data made from the committed KJV excerpt, and the closing verdict.
# Expects MT (the moetrain binary) and SRC (the source tree) to be set.
W=$(mktemp -d /tmp/mt_cli.XXXXXX)
trap '[[ -n "${MT_KEEP:-}" ]] || rm -rf "$W"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1
fails=0
ok() { echo "ok: $1"; }
bad() { echo "FAIL: $1"; fails=$((fails + 1)); }

# expect_error DESCRIPTION PATTERN COMMAND...: non-zero exit and PATTERN in stderr.
expect_error() {
  local what=$1 pattern=$2
  shift 2
  local out rc
  out=$("$@" 2>&1 >/dev/null)
  rc=$?
  if [[ $rc -ne 0 && "$out" == *"$pattern"* ]]; then ok "$what"; else bad "$what (rc $rc): $out"; fi
}

# A 300-token BPE (tok.bpe) and train/val shards (data/) of the excerpt, in the current folder.
make_tiny_data() {
  "$MT" data train-tokenizer --input "$SRC/tests/data/kjv_genesis_excerpt.txt" --vocab-size 300 --out tok.bpe >/dev/null \
    || bad "train-tokenizer"
  "$MT" data tokenize --input "$SRC/tests/data/kjv_genesis_excerpt.txt" --tokenizer tok.bpe --out data \
    --val-fraction 0.1 >/dev/null || bad "tokenize"
}

# Exits 1 naming the failure count, or 0 with `message`.
finish() {
  if [[ $fails -ne 0 ]]; then echo "$fails check(s) failed"; exit 1; fi
  echo "$1"
}
