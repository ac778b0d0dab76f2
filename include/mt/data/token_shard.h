// llm.c token shards: a header of 256 int32 (little-endian) — [0] magic 20240520, [1] version 1,
// [2] token count, the rest zero — followed by the tokens as uint16. moetrain reads shards that
// llm.c's data scripts wrote, and writes shards they can read.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace mt {

inline constexpr int32_t kShardMagic = 20240520;
inline constexpr int32_t kShardVersion = 1;
inline constexpr int kShardHeaderInts = 256;
inline constexpr int64_t kShardHeaderBytes = kShardHeaderInts * 4;

struct ShardHeader {
  int32_t magic = 0;
  int32_t version = 0;
  int64_t tokens = 0;
};

// Writes tokens (each must be < 65536) as a shard; errors name the path.
void write_shard(const std::string& path, std::span<const int32_t> tokens);

// Reads and checks the header: a regular file, magic, version, at least one token, and that the file
// size is exactly header + 2 * token count (a truncated or padded file is an error naming the path).
ShardHeader read_shard_header(const std::string& path);

// Reads a whole shard after read_shard_header's checks; a token id >= vocab_size is an error that
// names the path and the token's position.
std::vector<uint16_t> read_shard(const std::string& path, int32_t vocab_size);

}  // namespace mt
