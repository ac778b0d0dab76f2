// ShardSeries: writes a series of llm.c shards <dir>/<prefix>_000000.bin, _000001.bin, ... of
// `shard_tokens` tokens each (the last may be shorter) by appending tokens as they come, so a
// token stream of any length is written in bounded memory. Files are written under a temporary
// name (<name>.tmp) until commit() renames them, so readers never see a half-written series.
#pragma once
#include <cstdint>
#include <fstream>
#include <span>
#include <string>
#include <vector>

namespace mt {

class ShardSeries {
 public:
  ShardSeries(std::string dir, std::string prefix, int64_t shard_tokens);
  ~ShardSeries();  // removes the temporary files of a series never committed
  ShardSeries(const ShardSeries&) = delete;
  ShardSeries& operator=(const ShardSeries&) = delete;

  // Appends tokens (each must be < 65536); errors name the file.
  void append(std::span<const int32_t> tokens);

  // Closes the shard being written (its header gets its token count).
  void close();

  // Keeps only the first `tokens` tokens of the series (shorter shards are cut, later ones removed).
  void truncate(int64_t tokens);

  int64_t tokens() const { return tokens_; }
  // The temporary files written so far, in order (readable once close() was called).
  const std::vector<std::string>& temp_files() const { return temp_; }

  // Renames every file to its final name and returns the final names.
  std::vector<std::string> commit();

 private:
  std::string name(size_t index) const;
  void finish_shard();

  std::string dir_, prefix_;
  int64_t shard_tokens_;
  int64_t tokens_ = 0;
  int64_t in_shard_ = 0;  // tokens in the open shard
  std::ofstream out_;
  std::vector<std::string> temp_;
  bool committed_ = false;
};

}  // namespace mt
