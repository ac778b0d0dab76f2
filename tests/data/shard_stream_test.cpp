// ShardStream: windows read across shard ends, ids checked per read with the shard and position
// named, and a shard cut short after opening is an error, not garbage.
#include "mt/data/shard_stream.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "mt/core/error.h"
#include "mt/data/token_shard.h"
#include "temp_dir.h"

namespace mt {
namespace {

// Shards of 5, 1 and 4 tokens; stream[i] = 10 + i.
struct Stream {
  testing::TempDir dir;
  std::vector<std::string> files;
  Stream() {
    int32_t next = 10;
    for (int n : {5, 1, 4}) {
      std::vector<int32_t> t;
      for (int i = 0; i < n; ++i) t.push_back(next++);
      files.push_back(dir.file("s" + std::to_string(files.size()) + ".bin"));
      write_shard(files.back(), t);
    }
  }
};

std::vector<int32_t> read(const ShardStream& s, int64_t start, int64_t n) {
  std::vector<int32_t> out(n, -1);
  s.read(start, out);
  return out;
}

TEST(ShardStream, ReadsAnyRangeAcrossShardEnds) {
  Stream f;
  ShardStream s(f.files, 100);
  EXPECT_EQ(s.size(), 10);
  EXPECT_EQ(read(s, 0, 10), (std::vector<int32_t>{10, 11, 12, 13, 14, 15, 16, 17, 18, 19}));
  EXPECT_EQ(read(s, 4, 3), (std::vector<int32_t>{14, 15, 16}));  // through the 1-token shard
  EXPECT_EQ(read(s, 5, 1), (std::vector<int32_t>{15}));
  EXPECT_EQ(read(s, 9, 1), (std::vector<int32_t>{19}));
}

TEST(ShardStream, IdAboveVocabIsFoundWhenItsWindowIsRead) {
  Stream f;
  ShardStream s(f.files, 17);  // stream[7] = 17 is token 1 of the third shard
  EXPECT_EQ(read(s, 0, 7).back(), 16);
  try {
    read(s, 5, 3);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s2.bin': token 1 is 17, expected ids below the vocabulary size 17"),
              std::string::npos)
        << e.what();
  }
}

TEST(ShardStream, ShardCutShortAfterOpeningNamesIt) {
  Stream f;
  ShardStream s(f.files, 100);
  std::filesystem::resize_file(f.files[2], kShardHeaderBytes + 2 * 2);
  EXPECT_EQ(read(s, 6, 2), (std::vector<int32_t>{16, 17}));
  try {
    read(s, 8, 2);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("s2.bin': expected tokens 2..4, but the file ends"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace mt
