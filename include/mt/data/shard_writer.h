// Tokenizes text files into llm.c shards for training and validation.
//
// Documents: each input file, further split at every literal "<|endoftext|>" in it (empty documents
// are skipped). The token stream is, for each document in input order, the EOT id followed by the
// document's tokens (llm.c's convention: EOT opens every document).
// Split: the last floor(val_fraction * N) tokens of the stream are the validation split, the rest
// the training split, so the split depends only on the inputs and val_fraction. Each split is cut
// into shards of shard_tokens tokens (the last may be shorter):
//   <out_dir>/train_000000.bin, train_000001.bin, ...    <out_dir>/val_000000.bin, ...
// Existing train_*.bin / val_*.bin files in out_dir are removed first, so a glob sees only this run.
#pragma once
#include <cstdint>
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

ShardSummary tokenize_to_shards(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                                const std::string& out_dir, int64_t shard_tokens, double val_fraction);

}  // namespace mt
