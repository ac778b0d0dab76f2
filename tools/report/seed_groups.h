// Seed groups for `moetrain compare`: runs of one recipe that differ only in train.seed (and in
// their folder), each quantity summarised over the group as mean, sample standard deviation and
// count, and the two-standard-error screen for a difference between two groups' means.
#pragma once
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "mt/io/recipe.h"
#include "report/png_plot.h"
#include "report/run_metrics.h"

namespace mt {

// Note [Seed groups]: run i joins the first group whose recipe equals its own once train.seed and
// train.run_dir are set aside and which has no run with its seed yet; otherwise it opens a new
// group. A distilled student of seed s whose distill.teacher ends in "-s<s>" (the teacher's run of
// the same seed, as scripts/compare-kjv.sh names it) counts as distilled from the path without it,
// so the students of teachers t-s1, t-s2 group as students of t. So `compare a-s1 a-s2 b-s1 b-s2` gives groups {a-s1, a-s2} and {b-s1, b-s2} when a and b
// are different recipes, and also when they are one recipe run twice per seed (before and after a
// code change, say): a run never joins a group that already holds its seed. Groups keep the order
// of their first run; runs keep their order inside a group.
std::vector<std::vector<size_t>> group_by_seed(const std::vector<Recipe>& recipes);

// A group's name from its runs' folder names: their common prefix and suffix around the differing
// middles in braces ("moe-s1", "moe-s2" -> "moe-s{1,2}"); a single run's own name.
std::string group_name(const std::vector<std::string>& names);

// One quantity over the runs of a group.
struct Spread {
  int n = 0;         // values
  double mean = 0;   // NaN when any value is
  double std = 0;    // sample standard deviation (n - 1 in the denominator); NaN when n == 1
  double min = 0, max = 0;
};
// nullopt for no values.
std::optional<Spread> spread_of(const std::vector<double>& values);

// The difference of two groups' means and its standard error (Welch's: sqrt(s_a^2/n_a + s_b^2/n_b)),
// when both groups have n >= 2.
struct MeanDifference {
  double diff = 0;  // mean_a - mean_b
  double se = 0;
  bool beyond_two_se() const;  // |diff| > 2 se
};
std::optional<MeanDifference> difference_of_means(const Spread& a, const Spread& b);

// The eval curve of a group: at each step that every run evaluated, the mean val loss and, over
// two or more runs, a band from the lowest to the highest run's. x is tokens (by_tokens) or the step.
PlotSeries mean_eval_curve(const std::string& name, const std::vector<const RunMetrics*>& runs, bool by_tokens);

}  // namespace mt
