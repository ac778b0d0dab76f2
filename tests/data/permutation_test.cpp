// SplitMix64 and the loader's permutation, against values computed independently (BigInt in node).
#include "mt/data/permutation.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace mt {
namespace {

TEST(SplitMix64, MatchesTheReferenceSequence) {
  SplitMix64 rng(0);
  EXPECT_EQ(rng.next(), 0xE220A8397B1DCDAFull);
  EXPECT_EQ(rng.next(), 0x6E789E6AA1B965F4ull);
  EXPECT_EQ(rng.next(), 0x06C45D188009454Full);
}

TEST(Permutation, MatchesIndependentComputation) {
  EXPECT_EQ(shuffled_indices(10, 42, 0), (std::vector<int64_t>{0, 6, 9, 1, 5, 7, 8, 2, 4, 3}));
  EXPECT_EQ(shuffled_indices(10, 42, 1), (std::vector<int64_t>{3, 8, 7, 1, 9, 0, 2, 6, 5, 4}));
  EXPECT_EQ(shuffled_indices(12, 7, 3), (std::vector<int64_t>{2, 6, 7, 3, 5, 0, 1, 11, 8, 4, 9, 10}));
}

TEST(Permutation, IsAPermutation) {
  std::vector<int64_t> p = shuffled_indices(1000, 123, 9);
  std::sort(p.begin(), p.end());
  for (int64_t i = 0; i < 1000; ++i) ASSERT_EQ(p[i], i);
  EXPECT_TRUE(shuffled_indices(0, 1, 1).empty());
  EXPECT_EQ(shuffled_indices(1, 1, 1), (std::vector<int64_t>{0}));
}

TEST(Permutation, BoundedIsMultiplyHigh) {
  EXPECT_EQ(bounded(0, 10), 0u);
  EXPECT_EQ(bounded(~0ull, 10), 9u);
  EXPECT_EQ(bounded(1ull << 63, 10), 5u);
}

}  // namespace
}  // namespace mt
