// ShardSeries: appended tokens land in shards of the set size with correct headers, truncate cuts
// mid-shard, at a shard end and to nothing, files stay .tmp until commit, and an uncommitted
// series leaves no file behind.
#include "mt/data/shard_series.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <numeric>

#include "mt/data/token_shard.h"
#include "temp_dir.h"

namespace mt {
namespace {

std::vector<int32_t> iota(int n, int32_t from = 0) {
  std::vector<int32_t> v(n);
  std::iota(v.begin(), v.end(), from);
  return v;
}

std::vector<int64_t> sizes(const std::vector<std::string>& paths) {
  std::vector<int64_t> out;
  for (const auto& p : paths) out.push_back(read_shard_header(p).tokens);
  return out;
}

TEST(ShardSeries, AppendsIntoShardsOfTheSetSizeAndCommits) {
  testing::TempDir dir;
  ShardSeries s(dir.path().string(), "train", 4);
  s.append(iota(3));
  s.append(iota(6, 3));  // 9 tokens: 4 + 4 + 1
  EXPECT_EQ(s.tokens(), 9);
  ASSERT_EQ(s.temp_files().size(), 3u);
  EXPECT_TRUE(s.temp_files()[0].ends_with("train_000000.bin.tmp"));
  const std::vector<std::string> paths = s.commit();
  EXPECT_EQ(sizes(paths), (std::vector<int64_t>{4, 4, 1}));
  EXPECT_TRUE(paths[2].ends_with("train_000002.bin"));
  const std::vector<uint16_t> last = read_shard(paths[1], 100);
  EXPECT_EQ(last, (std::vector<uint16_t>{4, 5, 6, 7}));
  EXPECT_FALSE(std::filesystem::exists(paths[0] + ".tmp"));
}

TEST(ShardSeries, TruncateCutsMidShardAtAShardEndAndToNothing) {
  for (const auto& [keep, want] : {std::pair{6, std::vector<int64_t>{4, 2}}, {8, {4, 4}}, {9, {4, 4, 1}}, {3, {3}}, {0, {}}}) {
    testing::TempDir dir;
    ShardSeries s(dir.path().string(), "t", 4);
    s.append(iota(9));
    s.truncate(keep);
    EXPECT_EQ(s.tokens(), keep);
    const std::vector<std::string> paths = s.commit();
    EXPECT_EQ(sizes(paths), want) << "keep " << keep;
    if (!paths.empty()) EXPECT_EQ(read_shard(paths.back(), 100).back(), keep - 1) << "keep " << keep;
    EXPECT_EQ(static_cast<size_t>(std::distance(std::filesystem::directory_iterator(dir.path()), {})), want.size());
  }
}

TEST(ShardSeries, AnUncommittedSeriesLeavesNothing) {
  testing::TempDir dir;
  {
    ShardSeries s(dir.path().string(), "val", 2);
    s.append(iota(5));
  }
  EXPECT_TRUE(std::filesystem::is_empty(dir.path()));
}

}  // namespace
}  // namespace mt
