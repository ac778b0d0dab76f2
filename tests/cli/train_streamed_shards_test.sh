#!/usr/bin/env bash
# Streamed shards: `moetrain train` on a 6 GB corpus (two sparse shards of 1.5e9 tokens, no disk used)
# under a 3 GB address-space limit (ulimit -v) succeeds, because only the windows trained on are read;
# and its peak resident memory is within 64 MB of the same run on a 1e6-token corpus. (The seeded
# window order of an epoch is the one thing that grows with the corpus: 8 bytes a window, 23 MB here.)
set -uo pipefail
MT=$1
SRC=$2
source "$SRC/tests/cli/lib.sh"
cd "$W"
# sparse_shard PATH TOKENS: a valid llm.c shard of TOKENS zero ids, written as a hole.
sparse_shard() {
  python3 - "$1" "$2" <<'PY'
import struct, sys
path, n = sys.argv[1], int(sys.argv[2])
with open(path, "wb") as f:
    f.write(struct.pack("<3i", 20240520, 1, n) + bytes(4 * 253))
    f.truncate(1024 + 2 * n)
PY
}
mkdir -p big small
sparse_shard big/train_000000.bin 1500000000
sparse_shard big/train_000001.bin 1500000000
sparse_shard small/train_000000.bin 1000000
cat > r.yaml <<YAML
model: {layers: 1, d_model: 32, heads: 2, seq_len: 1024, vocab_size: 300, dtype: f32}
data: {train: big/train_*.bin}
optim: {lr: 1.0e-3}
train: {steps: 4, micro_batch: 2, grad_accum: 1, device: cpu}
checkpoint: {every: 0}
log: {progress: plain, every: 1}
YAML
# peak_rss_kb LOG COMMAND...: runs COMMAND under a 3 GB `ulimit -v`; prints its peak resident set in kB
# (ru_maxrss of the waited-for child: the VmHWM that /proc/PID/status shows at its end), or fails.
peak_rss_kb() {
  python3 - "$@" <<'PY'
import resource, subprocess, sys
log, cmd = sys.argv[1], sys.argv[2:]
limit = 3 * 10**9
def lim(): resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
with open(log, "w") as out:
    rc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, preexec_fn=lim).returncode
print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(rc)
PY
}
if big_kb=$(peak_rss_kb big.log "$MT" train r.yaml train.run_dir=big_run); then
  ok "6 GB of shards train under a 3 GB address-space limit (peak RSS ${big_kb} kB)"
else
  bad "training on 6 GB of shards under ulimit -v 3 GB"; tail -5 big.log
  big_kb=""
fi
grep -q '"step": *4' big_run/metrics.jsonl && ok "the run reached step 4" || bad "no step 4 in big_run/metrics.jsonl"
small_kb=$(peak_rss_kb small.log "$MT" train r.yaml train.run_dir=small_run data.train=small/train_*.bin) \
  || { bad "training on the small corpus"; tail -5 small.log; small_kb=""; }
if [[ -n "${big_kb:-}" && -n "${small_kb:-}" ]] && (( big_kb - small_kb < 65536 )); then
  ok "peak RSS on 3e9 tokens ($big_kb kB) is within 64 MB of that on 1e6 tokens ($small_kb kB)"
else
  bad "peak RSS grows with the corpus: ${big_kb:-?} kB vs ${small_kb:-?} kB"
fi
finish "streamed shards: bounded memory on a corpus larger than the address space allowed"
