// llm.c token shards: exact bytes written, round trip, and each damaged-file error names the path.
#include "mt/data/token_shard.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <functional>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "expect_error.h"
#include "temp_dir.h"

namespace mt {
namespace {

using testing::expect_error_with;

TEST(TokenShard, WritesTheLlmcLayout) {
  testing::TempDir dir;
  const std::string path = dir.file("s.bin");
  write_shard(path, std::vector<int32_t>{1, 50256, 65535, 0});
  const std::string bytes = read_file_bytes(path);
  ASSERT_EQ(bytes.size(), 1024u + 8u);
  int32_t header[256];
  std::memcpy(header, bytes.data(), sizeof(header));
  EXPECT_EQ(header[0], 20240520);
  EXPECT_EQ(header[1], 1);
  EXPECT_EQ(header[2], 4);
  for (int i = 3; i < 256; ++i) EXPECT_EQ(header[i], 0) << i;
  uint16_t tokens[4];
  std::memcpy(tokens, bytes.data() + 1024, sizeof(tokens));
  EXPECT_EQ(tokens[1], 50256);
  EXPECT_EQ(tokens[2], 65535);
}

TEST(TokenShard, RoundTrips) {
  testing::TempDir dir;
  const std::string path = dir.file("s.bin");
  std::vector<int32_t> tokens;
  for (int i = 0; i < 5000; ++i) tokens.push_back((i * 7919) % 50257);
  write_shard(path, tokens);
  const ShardHeader h = read_shard_header(path);
  EXPECT_EQ(h.magic, kShardMagic);
  EXPECT_EQ(h.version, kShardVersion);
  EXPECT_EQ(h.tokens, 5000);
  const std::vector<uint16_t> back = read_shard(path, 50257);
  ASSERT_EQ(back.size(), tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) ASSERT_EQ(back[i], tokens[i]) << i;
}


TEST(TokenShard, EmptyShardIsRefusedByName) {
  testing::TempDir dir;
  const std::string path = dir.file("e.bin");
  write_shard(path, std::vector<int32_t>{});
  expect_error_with([&] { read_shard(path, 10); }, {path, "an empty shard"});
  expect_error_with([&] { read_shard_header(path); }, {path, "an empty shard"});
}

TEST(TokenShard, NonRegularFileIsRefusedNotOpened) {
  testing::TempDir dir;
  const std::string fifo = dir.file("fifo.bin");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  // Opening a FIFO with no writer would block forever: the check must come first.
  expect_error_with([&] { read_shard_header(fifo); }, {fifo, "a FIFO"});
  expect_error_with([&] { read_shard(fifo, 10); }, {fifo, "a FIFO"});
  expect_error_with([&] { read_shard(dir.path().string(), 10); }, {dir.path().string(), "a directory"});
  expect_error_with([&] { read_shard("/dev/zero", 10); }, {"/dev/zero", "a character device"});
}

TEST(TokenShard, WriterRejectsIdsAboveUint16) {
  testing::TempDir dir;
  EXPECT_THROW(write_shard(dir.file("s.bin"), std::vector<int32_t>{1, 65536}), Error);
  EXPECT_THROW(write_shard(dir.file("s.bin"), std::vector<int32_t>{-1}), Error);
}

enum class HeaderDetects { kNo, kYes };

// Writes a valid 3-token shard, lets `damage` edit its bytes, and expects read_shard (and
// read_shard_header when the header shows the damage) to fail naming the file and saying `what`.
void expect_shard_error(const std::function<void(std::string&)>& damage, int32_t vocab, const std::string& what,
                        HeaderDetects header_detects = HeaderDetects::kYes) {
  testing::TempDir dir;
  const std::string path = dir.file("damaged_000000.bin");
  write_shard(path, std::vector<int32_t>{5, 6, 7});
  std::string bytes = read_file_bytes(path);
  damage(bytes);
  write_file_bytes(path, bytes);
  const auto expect_error = [&](const std::function<void()>& read) {
    try {
      read();
      FAIL() << "expected an error containing '" << what << "'";
    } catch (const Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(what), std::string::npos) << msg;
    }
  };
  expect_error([&] { read_shard(path, vocab); });
  if (header_detects == HeaderDetects::kYes) expect_error([&] { read_shard_header(path); });
}

void set_int(std::string& bytes, int index, int32_t v) { std::memcpy(bytes.data() + 4 * index, &v, 4); }

TEST(TokenShard, WrongMagicNamesTheFile) {
  expect_shard_error([](std::string& b) { set_int(b, 0, 20240521); }, 100, "expected magic 20240520, got 20240521");
}

TEST(TokenShard, WrongVersionNamesTheFile) {
  expect_shard_error([](std::string& b) { set_int(b, 1, 2); }, 100, "expected version 1, got 2");
}

TEST(TokenShard, TruncatedFileNamesTheFile) {
  expect_shard_error([](std::string& b) { b.resize(b.size() - 1); }, 100, "(truncated)");
  expect_shard_error([](std::string& b) { b.resize(100); }, 100, "header");
  expect_shard_error([](std::string& b) { set_int(b, 2, 4); }, 100, "header says 4 tokens");
}

TEST(TokenShard, IdAboveVocabNamesTheFile) {
  expect_shard_error([](std::string&) {}, 7, "token 2 is 7, expected ids below the vocabulary size 7",
                     HeaderDetects::kNo);
}

TEST(TokenShard, MissingFileNamesIt) {
  try {
    read_shard("/nonexistent/dir/train_000000.bin", 10);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/train_000000.bin"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mt
