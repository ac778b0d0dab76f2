// MixtureLoader: sampling follows the weights (within 1% over 100K sequences), every row comes from
// the source its draw names, one source is exactly TokenLoader, resume from a saved state is exact,
// and data-parallel ranks split each step. Source k's shard holds ids 1000*k + i.
#include "mt/data/mixture_loader.h"

#include <gtest/gtest.h>

#include <set>

#include "mt/core/error.h"
#include "mt/data/token_shard.h"
#include "temp_dir.h"

namespace mt {
namespace {

constexpr int64_t kT = 8;

struct Sources {
  testing::TempDir dir;
  std::vector<MixtureSource> sources;
  explicit Sources(std::vector<double> weights, std::vector<int> tokens = {801, 401, 961}) {
    for (size_t k = 0; k < weights.size(); ++k) {
      std::vector<int32_t> t;
      for (int i = 0; i < tokens[k]; ++i) t.push_back(static_cast<int32_t>(1000 * k + i));
      const std::string path = dir.file("src" + std::to_string(k) + ".bin");
      write_shard(path, t);
      sources.push_back({path, weights[k]});
    }
  }
};

TokenLoaderOptions common(int64_t batch, int rank = 0, int size = 1, uint64_t seed = 3) {
  TokenLoaderOptions o;
  o.batch_size = batch;
  o.seq_len = kT;
  o.dp_rank = rank;
  o.dp_size = size;
  o.seed = seed;
  o.vocab_size = 3000;
  return o;
}

TEST(MixtureLoader, SamplingMatchesTheWeightsWithinOnePercentOver100KSequences) {
  Sources s({1.0, 2.0, 5.0});
  MixtureLoader loader(s.sources, common(10));
  for (int i = 0; i < 10'000; ++i) loader.next_batch();
  const double total = 8.0;
  int64_t drawn = 0;
  for (size_t k = 0; k < 3; ++k) {
    const double share = static_cast<double>(loader.state()[k].sequences) / 100'000.0;
    EXPECT_NEAR(share, s.sources[k].weight / total, 0.01) << "source " << k;
    drawn += loader.state()[k].sequences;
  }
  EXPECT_EQ(drawn, 100'000);
}

TEST(MixtureLoader, EachRowComesFromTheSourceItsDrawNames) {
  Sources s({1.0, 1.0, 2.0});
  MixtureLoader loader(s.sources, common(4));
  std::vector<std::set<int32_t>> seen(3);
  for (int64_t step = 0; step < 300; ++step) {  // several epochs of the smaller sources
    const std::vector<int32_t> batch = loader.next_batch();
    for (int64_t b = 0; b < 4; ++b) {
      const int32_t first = batch[b * (kT + 1)];
      const size_t k = loader.source_of(step * 4 + b);
      ASSERT_EQ(first / 1000, static_cast<int32_t>(k)) << "step " << step << " row " << b;
      for (int64_t t = 0; t <= kT; ++t) ASSERT_EQ(batch[b * (kT + 1) + t], first + t);
      seen[k].insert(first);
    }
  }
  EXPECT_EQ(seen[1].size(), 50u);  // every window of source 1 (400 / 8) was visited
  EXPECT_GT(loader.state()[1].at.epoch, 0);
}

TEST(MixtureLoader, OneSourceIsExactlyTokenLoader) {
  Sources s({0.3});
  for (int rank = 0; rank < 2; ++rank) {
    MixtureLoader mixture(s.sources, common(5, rank, 2, 9));
    TokenLoaderOptions o = common(5, rank, 2, 9);
    o.shards = {s.sources[0].shards};
    TokenLoader plain(o);
    for (int i = 0; i < 50; ++i) ASSERT_EQ(mixture.next_batch(), plain.next_batch()) << "rank " << rank << " step " << i;
    EXPECT_EQ(mixture.state()[0].at, plain.state());
  }
}

TEST(MixtureLoader, ResumeFromStateContinuesIdentically) {
  Sources s({2.0, 1.0, 1.0});
  MixtureLoader original(s.sources, common(3, 1, 2, 4));
  for (int i = 0; i < 77; ++i) original.next_batch();
  const std::vector<SourcePosition> saved = original.state();
  MixtureLoader resumed(s.sources, common(3, 1, 2, 4));
  resumed.set_state(saved);
  for (int i = 0; i < 100; ++i) ASSERT_EQ(resumed.next_batch(), original.next_batch()) << "step " << i;
  EXPECT_THROW(resumed.set_state({saved[0], saved[1]}), Error);
}

TEST(MixtureLoader, DataParallelRanksSplitEachStep) {
  Sources s({1.0, 3.0});
  MixtureLoader single(s.sources, common(6));
  MixtureLoader r0(s.sources, common(3, 0, 2)), r1(s.sources, common(3, 1, 2));
  for (int step = 0; step < 40; ++step) {
    const auto all = single.next_batch(), a = r0.next_batch(), b = r1.next_batch();
    for (int64_t j = 0; j < 6; ++j) {  // sequence j of the step is row j / 2 of rank j % 2
      const auto& rank = j % 2 == 0 ? a : b;
      ASSERT_TRUE(std::equal(all.begin() + j * (kT + 1), all.begin() + (j + 1) * (kT + 1),
                             rank.begin() + (j / 2) * (kT + 1)))
          << "step " << step << " sequence " << j;
    }
  }
}

}  // namespace
}  // namespace mt
