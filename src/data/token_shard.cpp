// llm.c token shard writer and checked reader.
#include "mt/data/token_shard.h"

#include <bit>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"

namespace mt {
namespace {

static_assert(std::endian::native == std::endian::little, "token shards are little-endian");

// Checks the first header ints against the file's total size.
ShardHeader check_header(const std::string& path, const int32_t (&header)[3], uint64_t file_size) {
  MT_CHECK(header[0] == kShardMagic, "token shard '", path, "': expected magic ", kShardMagic, ", got ", header[0],
           " (not an llm.c token shard)");
  MT_CHECK(header[1] == kShardVersion, "token shard '", path, "': expected version ", kShardVersion, ", got ",
           header[1]);
  MT_CHECK(header[2] > 0, "token shard '", path, "': expected a positive token count in the header, got ", header[2],
           header[2] == 0 ? " (an empty shard)" : "");
  const int64_t expected = kShardHeaderBytes + 2 * static_cast<int64_t>(header[2]);
  MT_CHECK(static_cast<int64_t>(file_size) == expected, "token shard '", path, "': header says ", header[2],
           " tokens (", expected, " bytes), but the file has ", file_size, " bytes",
           static_cast<int64_t>(file_size) < expected ? " (truncated)" : "");
  return {header[0], header[1], header[2]};
}

}  // namespace

void write_shard(const std::string& path, std::span<const int32_t> tokens) {
  MT_CHECK(tokens.size() <= static_cast<size_t>(INT32_MAX), "token shard '", path, "': at most ", INT32_MAX,
           " tokens fit in a shard, got ", tokens.size());
  std::string bytes(kShardHeaderBytes + 2 * tokens.size(), '\0');
  const int32_t header[3] = {kShardMagic, kShardVersion, static_cast<int32_t>(tokens.size())};
  std::memcpy(bytes.data(), header, sizeof(header));
  for (size_t i = 0; i < tokens.size(); ++i) {
    MT_CHECK(tokens[i] >= 0 && tokens[i] < 65536, "token shard '", path, "': token ", i, " is ", tokens[i],
             ", but shards store uint16 ids (0..65535)");
    const uint16_t t = static_cast<uint16_t>(tokens[i]);
    std::memcpy(bytes.data() + kShardHeaderBytes + 2 * i, &t, 2);
  }
  write_file_bytes(path, bytes);
}

ShardHeader read_shard_header(const std::string& path) {
  check_regular_file(path, "token shard");
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot open token shard '", path, "': ", std::strerror(errno));
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  MT_CHECK(!ec, "token shard '", path, "': ", ec.message());
  MT_CHECK(size >= static_cast<uint64_t>(kShardHeaderBytes), "token shard '", path, "': expected at least a ",
           kShardHeaderBytes, "-byte header, got a file of ", size, " bytes");
  int32_t header[3];
  in.read(reinterpret_cast<char*>(header), sizeof(header));
  MT_CHECK(in, "token shard '", path, "': cannot read the header");
  return check_header(path, header, size);
}

std::vector<uint16_t> read_shard(const std::string& path, int32_t vocab_size) {
  check_regular_file(path, "token shard");
  const std::string bytes = read_file_bytes(path);
  MT_CHECK(bytes.size() >= static_cast<size_t>(kShardHeaderBytes), "token shard '", path, "': expected at least a ",
           kShardHeaderBytes, "-byte header, got a file of ", bytes.size(), " bytes");
  int32_t ints[3];
  std::memcpy(ints, bytes.data(), sizeof(ints));
  const ShardHeader header = check_header(path, ints, bytes.size());
  std::vector<uint16_t> tokens(header.tokens);
  if (!tokens.empty()) std::memcpy(tokens.data(), bytes.data() + kShardHeaderBytes, 2 * tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i)
    MT_CHECK(tokens[i] < vocab_size, "token shard '", path, "': token ", i, " is ", tokens[i],
             ", expected ids below the vocabulary size ", vocab_size);
  return tokens;
}

}  // namespace mt
