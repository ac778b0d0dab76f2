// TokenLoader: window contents and layout, determinism, seeds, dp sharding, resume, sequential
// order, epochs, and glob patterns. The shards hold token i = i % 1000, so a window's first token
// tells which window it is.
#include "mt/data/token_loader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "mt/core/error.h"
#include "mt/data/token_shard.h"
#include "temp_dir.h"

namespace mt {
namespace {

constexpr int64_t kT = 8;

// Three shards (300 + 401 + 100 tokens) of one stream where stream[i] = i % 1000.
struct Shards {
  testing::TempDir dir;
  Shards() {
    int64_t next = 0;
    for (const auto& [name, n] : {std::pair{"train_000000.bin", 300}, {"train_000001.bin", 401}, {"train_000002.bin", 100}}) {
      std::vector<int32_t> t;
      for (int i = 0; i < n; ++i) t.push_back(static_cast<int32_t>(next++ % 1000));
      write_shard(dir.file(name), t);
    }
    write_shard(dir.file("val_000000.bin"), std::vector<int32_t>{1, 2, 3});
  }
  TokenLoaderOptions options(int64_t batch, int rank = 0, int size = 1, uint64_t seed = 1) const {
    TokenLoaderOptions o;
    o.shards = {(dir.path() / "train_*.bin").string()};
    o.batch_size = batch;
    o.seq_len = kT;
    o.dp_rank = rank;
    o.dp_size = size;
    o.seed = seed;
    o.vocab_size = 1000;
    return o;
  }
};

// The window index of each row of a batch (windows start at multiples of T in the stream).
std::vector<int64_t> windows_of(const std::vector<int32_t>& batch) {
  std::vector<int64_t> w;
  for (size_t r = 0; r < batch.size() / (kT + 1); ++r) w.push_back(batch[r * (kT + 1)] / kT);
  return w;
}

TEST(TokenLoader, WindowsAreConsecutiveTokensStridedByT) {
  Shards s;
  TokenLoader loader(s.options(4));
  EXPECT_EQ(loader.files().size(), 3u);  // the val shard does not match the pattern
  EXPECT_EQ(loader.num_tokens(), 801);
  EXPECT_EQ(loader.num_windows(), 100);  // (801 - 1) / 8
  EXPECT_EQ(loader.steps_per_epoch(), 25);
  const std::vector<int32_t> batch = loader.next_batch();
  ASSERT_EQ(batch.size(), 4u * (kT + 1));
  for (int r = 0; r < 4; ++r) {
    const int32_t first = batch[r * (kT + 1)];
    EXPECT_EQ(first % kT, 0);
    for (int t = 0; t <= kT; ++t) EXPECT_EQ(batch[r * (kT + 1) + t], first + t);  // crosses shard ends too
  }
}

TEST(TokenLoader, SameSeedSameBatchesOtherSeedOtherBatches) {
  Shards s;
  TokenLoader a(s.options(4, 0, 1, 7)), b(s.options(4, 0, 1, 7)), c(s.options(4, 0, 1, 8));
  std::vector<int32_t> from_a, from_c;
  for (int i = 0; i < 60; ++i) {  // more than two epochs
    const auto x = a.next_batch();
    EXPECT_EQ(x, b.next_batch()) << "step " << i;
    from_a.insert(from_a.end(), x.begin(), x.end());
    const auto z = c.next_batch();
    from_c.insert(from_c.end(), z.begin(), z.end());
  }
  EXPECT_NE(from_a, from_c);
}

TEST(TokenLoader, EachEpochVisitsEveryWindowOnceInANewOrder) {
  Shards s;
  TokenLoader loader(s.options(5));
  std::vector<int64_t> epoch0, epoch1;
  for (int i = 0; i < 20; ++i) {
    const auto w = windows_of(loader.next_batch());
    epoch0.insert(epoch0.end(), w.begin(), w.end());
  }
  EXPECT_EQ(loader.state(), (LoaderState{0, 100}));
  for (int i = 0; i < 20; ++i) {
    const auto w = windows_of(loader.next_batch());
    epoch1.insert(epoch1.end(), w.begin(), w.end());
  }
  EXPECT_EQ(loader.state(), (LoaderState{1, 100}));
  EXPECT_NE(epoch0, epoch1);
  for (auto* e : {&epoch0, &epoch1}) {
    std::sort(e->begin(), e->end());
    for (int64_t i = 0; i < 100; ++i) ASSERT_EQ((*e)[i], i);
  }
}

TEST(TokenLoader, DataParallelRanksAreDisjointAndCoverTheSteps) {
  Shards s;
  const int dp = 3, B = 4;
  std::vector<TokenLoader> ranks;
  for (int r = 0; r < dp; ++r) ranks.emplace_back(s.options(B, r, dp, 5));
  TokenLoader single(s.options(B * dp, 0, 1, 5));
  EXPECT_EQ(ranks[0].steps_per_epoch(), 100 / 12);
  for (int step = 0; step < ranks[0].steps_per_epoch(); ++step) {
    std::multiset<int64_t> union_of_ranks;
    for (auto& loader : ranks) {
      const auto w = windows_of(loader.next_batch());
      union_of_ranks.insert(w.begin(), w.end());
    }
    const auto all = windows_of(single.next_batch());
    EXPECT_EQ(union_of_ranks, std::multiset<int64_t>(all.begin(), all.end())) << "step " << step;
    EXPECT_EQ(std::set<int64_t>(union_of_ranks.begin(), union_of_ranks.end()).size(), 12u) << "step " << step;
  }
}

TEST(TokenLoader, ResumeFromStateContinuesIdentically) {
  Shards s;
  TokenLoader original(s.options(6, 1, 2, 11));
  for (int i = 0; i < 11; ++i) original.next_batch();  // into the second epoch (8 steps per epoch)
  const LoaderState saved = original.state();
  EXPECT_EQ(saved.epoch, 1);
  TokenLoader resumed(s.options(6, 1, 2, 11));
  resumed.set_state(saved);
  for (int i = 0; i < 20; ++i) EXPECT_EQ(resumed.next_batch(), original.next_batch()) << "step " << i;
  EXPECT_THROW(resumed.set_state({0, 101}), Error);
}

TEST(TokenLoader, SequentialOrderWalksTheStream) {
  Shards s;
  TokenLoaderOptions o = s.options(3, 1, 2);
  o.order = LoaderOrder::kSequential;
  TokenLoader loader(o);
  EXPECT_EQ(windows_of(loader.next_batch()), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(windows_of(loader.next_batch()), (std::vector<int64_t>{7, 9, 11}));
  loader.set_state({0, 96});  // 96 + 6 > 100: the next step starts epoch 1 from the beginning
  EXPECT_EQ(windows_of(loader.next_batch()), (std::vector<int64_t>{1, 3, 5}));
  EXPECT_EQ(loader.state(), (LoaderState{1, 6}));
}

TEST(TokenLoader, ErrorsOnBadInput) {
  Shards s;
  TokenLoaderOptions o = s.options(60, 0, 2);  // 120 windows per step, only 100
  EXPECT_THROW(TokenLoader{o}, Error);
  o = s.options(4);
  o.vocab_size = 500;  // stream token 500 is token 200 of the second shard, the first bad id in stream order
  o.order = LoaderOrder::kSequential;
  TokenLoader loader(o);  // only the headers are read here; ids are checked as each window is read
  try {
    for (int64_t i = 0; i < loader.steps_per_epoch(); ++i) loader.next_batch();
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("train_000001.bin': token 200 is 500"), std::string::npos) << e.what();
  }
  o = s.options(4);
  o.shards = {(s.dir.path() / "nothing_*.bin").string()};
  EXPECT_THROW(TokenLoader{o}, Error);
  o = s.options(4, 2, 2);
  EXPECT_THROW(TokenLoader{o}, Error);
}

}  // namespace
}  // namespace mt
