// Seed groups: which runs share a group (recipe equal but for seed and folder, seeds distinct), group
// names, mean / sample std / count and Welch's standard error against hand-computed values, and
// the mean eval curve with its min..max band.
#include "report/seed_groups.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace mt {
namespace {

// A recipe of `variant` ("dense" or "moe") with `seed`, run in `dir`.
Recipe recipe(const std::string& variant, int seed, const std::string& dir) {
  std::vector<std::string> overrides = {"train.seed=" + std::to_string(seed), "train.run_dir=" + dir};
  if (variant == "moe") overrides.push_back("moe.experts=4");
  return load_recipe_string("data: {train: shards/*.bin}\ntrain: {steps: 10, micro_batch: 2, grad_accum: 1, run_dir: x}\n",
                            "t.yaml", overrides);
}

using Groups = std::vector<std::vector<size_t>>;

TEST(SeedGroups, SameRecipeDifferentSeedsShareAGroup) {
  EXPECT_EQ(group_by_seed({recipe("dense", 1, "d1"), recipe("moe", 1, "m1"), recipe("dense", 2, "d2"),
                           recipe("moe", 2, "m2"), recipe("dense", 3, "d3")}),
            (Groups{{0, 2, 4}, {1, 3}}));
  // Any other setting splits them.
  Recipe other_lr = recipe("dense", 2, "d2");
  other_lr.optim.lr *= 2;
  EXPECT_EQ(group_by_seed({recipe("dense", 1, "d1"), other_lr}), (Groups{{0}, {1}}));
  EXPECT_EQ(group_by_seed({}), Groups{});
}

TEST(SeedGroups, StudentsOfTheSameSeedsTeacherShareAGroup) {
  auto student = [](int seed, const std::string& teacher) {
    Recipe r = recipe("dense", seed, "st" + std::to_string(seed));
    r.distill.teacher = teacher;
    return r;
  };
  // Teacher t-s<seed> for the student of that seed: one group; a teacher of another seed, or of
  // another name, splits.
  EXPECT_EQ(group_by_seed({student(1, "runs/t-s1"), student(2, "runs/t-s2/"), student(3, "runs/t-s3")}),
            (Groups{{0, 1, 2}}));
  EXPECT_EQ(group_by_seed({student(1, "runs/t-s1"), student(2, "runs/t-s1")}), (Groups{{0}, {1}}));
  EXPECT_EQ(group_by_seed({student(1, "runs/t-s1"), student(2, "runs/u-s2")}), (Groups{{0}, {1}}));
  EXPECT_EQ(group_by_seed({student(1, "runs/t"), student(2, "runs/t")}), (Groups{{0, 1}}));
}

TEST(SeedGroups, ARepeatedSeedOpensANewGroup) {
  // One recipe run twice per seed (old and new code): old-s1, old-s2, new-s1, new-s2.
  EXPECT_EQ(group_by_seed({recipe("dense", 1, "o1"), recipe("dense", 2, "o2"), recipe("dense", 1, "n1"),
                           recipe("dense", 2, "n2")}),
            (Groups{{0, 1}, {2, 3}}));
}

TEST(SeedGroups, NameBracesTheDifferingMiddles) {
  EXPECT_EQ(group_name({"kjv-moe"}), "kjv-moe");
  EXPECT_EQ(group_name({"moe-s1", "moe-s2", "moe-s10"}), "moe-s{1,2,10}");
  EXPECT_EQ(group_name({"seed1-moe", "seed2-moe"}), "seed{1,2}-moe");
  EXPECT_EQ(group_name({"a", "b"}), "{a,b}");
  EXPECT_EQ(group_name({"s1", "s1x"}), "s1{,x}");
  EXPECT_EQ(group_name({"x1x", "x1x1x"}), "x1x{,1x}");
}

TEST(SeedGroups, SpreadIsMeanSampleStdAndCount) {
  // 3.0, 3.2, 3.4: mean 3.2, squares 0.04 + 0 + 0.04 over n - 1 = 2 -> std 0.2.
  const Spread s = *spread_of({3.0, 3.4, 3.2});
  EXPECT_EQ(s.n, 3);
  EXPECT_NEAR(s.mean, 3.2, 1e-12);
  EXPECT_NEAR(s.std, 0.2, 1e-12);
  EXPECT_EQ(s.min, 3.0);
  EXPECT_EQ(s.max, 3.4);
  const Spread one = *spread_of({4.5});
  EXPECT_EQ(one.n, 1);
  EXPECT_EQ(one.mean, 4.5);
  EXPECT_TRUE(std::isnan(one.std));
  EXPECT_FALSE(spread_of({}).has_value());
}

TEST(SeedGroups, DifferenceOfMeansAgainstTwoStandardErrors) {
  const Spread dense = *spread_of({3.0, 3.2, 3.4});   // mean 3.2, std 0.2
  const Spread moe = *spread_of({2.9, 3.0, 3.1});     // mean 3.0, std 0.1
  const Spread top2 = *spread_of({2.5, 2.55, 2.6});   // mean 2.55, std 0.05
  // dense - moe = 0.2; SE = sqrt(0.04/3 + 0.01/3) = 0.129099: 2 SE = 0.258199 > 0.2.
  const MeanDifference a = *difference_of_means(dense, moe);
  EXPECT_NEAR(a.diff, 0.2, 1e-12);
  EXPECT_NEAR(a.se, 0.1290994, 1e-6);
  EXPECT_FALSE(a.beyond_two_se());
  // moe - top2 = 0.45; SE = sqrt(0.01/3 + 0.0025/3) = 0.0645497: 2 SE = 0.129099 < 0.45.
  const MeanDifference b = *difference_of_means(moe, top2);
  EXPECT_NEAR(b.diff, 0.45, 1e-12);
  EXPECT_NEAR(b.se, 0.0645497, 1e-6);
  EXPECT_TRUE(b.beyond_two_se());
  // Unequal counts: {1, 2} (mean 1.5, std 0.7071) - {2, 3, 4, 5} (mean 3.5, std 1.2910):
  // SE = sqrt(0.5/2 + 1.6667/4) = 0.8165, diff -2 beyond 2 SE = 1.633.
  const MeanDifference c = *difference_of_means(*spread_of({1, 2}), *spread_of({2, 3, 4, 5}));
  EXPECT_NEAR(c.diff, -2, 1e-12);
  EXPECT_NEAR(c.se, std::sqrt(0.25 + (5.0 / 3) / 4), 1e-12);
  EXPECT_TRUE(c.beyond_two_se());
  // A single run has no standard deviation: no judgement.
  EXPECT_FALSE(difference_of_means(dense, *spread_of({1.0})).has_value());
}

TEST(SeedGroups, MeanEvalCurveOverTheStepsEveryRunEvaluated) {
  RunMetrics a, b, c;
  a.eval = {{10, 100, 5.0}, {20, 200, 4.0}, {30, 300, 3.5}};
  b.eval = {{10, 100, 5.4}, {20, 200, 4.6}};  // stopped before step 30
  c.eval = {{10, 100, 5.2}, {15, 150, 4.9}, {20, 200, 4.2}};
  const PlotSeries s = mean_eval_curve("g", {&a, &b, &c}, true);
  EXPECT_EQ(s.name, "g");
  ASSERT_EQ(s.x, (std::vector<double>{100, 200}));
  ASSERT_EQ(s.y.size(), 2u);
  EXPECT_NEAR(s.y[0], 5.2, 1e-12);
  EXPECT_NEAR(s.y[1], (4.0 + 4.6 + 4.2) / 3, 1e-12);
  EXPECT_EQ(s.y_lo, (std::vector<double>{5.0, 4.0}));
  EXPECT_EQ(s.y_hi, (std::vector<double>{5.4, 4.6}));
  EXPECT_EQ(mean_eval_curve("g", {&a, &b}, false).x, (std::vector<double>{10, 20}));
  // One run: its own curve, no band.
  const PlotSeries one = mean_eval_curve("a", {&a}, true);
  EXPECT_EQ(one.y, (std::vector<double>{5.0, 4.0, 3.5}));
  EXPECT_TRUE(one.y_lo.empty());
  EXPECT_TRUE(one.y_hi.empty());
}

}  // namespace
}  // namespace mt
