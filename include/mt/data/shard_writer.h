// Tokenizes text files into llm.c shards for training and validation.
//
// Documents: each input file, further split at every literal "<|endoftext|>" in it (empty documents
// are skipped). The token stream is, for each document in input order, the EOT id followed by the
// document's tokens (llm.c's convention: EOT opens every document).
// Split: the last floor(val_fraction * N) tokens of the stream are the validation split, the rest
// the training split, so the split depends only on the inputs and val_fraction. Each split is cut
// into shards of shard_tokens tokens (the last may be shorter):
//   <out_dir>/train_000000.bin, train_000001.bin, ...    <out_dir>/val_000000.bin, ...
// Existing train_*.bin / val_*.bin files in out_dir are replaced when the new ones are complete
// (they are written as <name>.tmp until then), so a glob sees only one run's shards.
//
// Streamed: the inputs are read in chunks of about run.chunk_bytes cut where tokens cannot change
// (text_chunks.h), encoded on run.threads threads and written in input order as they finish; memory
// is O(threads x chunk_bytes), and the shards are byte-identical for any threads and chunk size.
#pragma once
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "mt/data/tokenizer.h"

namespace mt {

struct ShardSummary {
  int64_t documents = 0;
  int64_t train_tokens = 0;
  int64_t val_tokens = 0;
  std::vector<std::string> train_files;
  std::vector<std::string> val_files;
};

struct TokenizeProgress {
  int64_t bytes_read = 0;
  int64_t bytes_total = 0;
  int64_t tokens = 0;
  int64_t documents = 0;
  bool done = false;
};

struct TokenizeRun {
  int threads = 1;
  int64_t chunk_bytes = 1 << 20;
  std::function<void(const TokenizeProgress&)> progress;  // called every progress_every and at the end
  std::chrono::milliseconds progress_every{1000};
};

ShardSummary tokenize_to_shards(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                                const std::string& out_dir, int64_t shard_tokens, double val_fraction,
                                const TokenizeRun& run = {});

}  // namespace mt
