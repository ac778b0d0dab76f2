// ShardStream: llm.c token shards (token_shard.h) seen as one token stream and read in windows with
// pread(2). Opening reads only the headers and a read touches only the bytes asked for, so start-up
// time and resident memory do not grow with the corpus; every read checks its ids against the vocabulary.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mt {

class ShardStream {
 public:
  // `files` in stream order (each header checked by read_shard_header); ids must be < vocab_size.
  ShardStream(std::vector<std::string> files, int32_t vocab_size);

  // Tokens stream[start, start + out.size()) into out, across shard ends. An id >= vocab_size is an
  // error naming the shard and the token's position in it, as read_shard's is.
  void read(int64_t start, std::span<int32_t> out) const;

  int64_t size() const { return begins_.back(); }
  const std::vector<std::string>& files() const { return files_; }

 private:
  std::vector<std::string> files_;
  std::vector<int64_t> begins_;  // shard i holds stream[begins_[i], begins_[i + 1]); size files + 1
  int32_t vocab_size_;
};

}  // namespace mt
