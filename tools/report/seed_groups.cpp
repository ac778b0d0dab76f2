// Seed groups: grouping runs by recipe (Note [Seed groups]), their names, mean / standard
// deviation / count of a quantity, Welch's standard error of a difference of means, and the mean
// eval curve with its min..max band.
#include "report/seed_groups.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>

#include "mt/core/error.h"

namespace mt {

namespace {

// The recipe with what may differ inside a group set aside: the seed, the folder, and a teacher's
// seed suffix that matches the run's own seed ("runs/t-s2" for a run of seed 2 reads "runs/t").
Recipe without_seed(Recipe r) {
  const std::string seed_suffix = "-s" + std::to_string(r.train.seed);
  std::string& teacher = r.distill.teacher;
  while (!teacher.empty() && teacher.back() == '/') teacher.pop_back();
  if (teacher.size() > seed_suffix.size() && teacher.ends_with(seed_suffix))
    teacher.resize(teacher.size() - seed_suffix.size());
  r.train.seed = 0;
  r.train.run_dir.clear();
  return r;
}

}  // namespace

std::vector<std::vector<size_t>> group_by_seed(const std::vector<Recipe>& recipes) {
  std::vector<std::vector<size_t>> groups;
  std::vector<Recipe> keys;  // per group
  for (size_t i = 0; i < recipes.size(); ++i) {
    const Recipe key = without_seed(recipes[i]);
    auto joins = [&](size_t g) {
      if (!(keys[g] == key)) return false;
      for (size_t j : groups[g])
        if (recipes[j].train.seed == recipes[i].train.seed) return false;
      return true;
    };
    size_t g = 0;
    while (g < groups.size() && !joins(g)) ++g;
    if (g == groups.size()) {
      groups.emplace_back();
      keys.push_back(key);
    }
    groups[g].push_back(i);
  }
  return groups;
}

std::string group_name(const std::vector<std::string>& names) {
  MT_ASSERT(!names.empty());
  if (names.size() == 1) return names[0];
  const std::string& first = names[0];
  size_t prefix = first.size(), suffix = first.size();
  for (const std::string& n : names) {
    prefix = std::min(prefix, static_cast<size_t>(std::mismatch(first.begin(), first.end(), n.begin(), n.end()).first -
                                                  first.begin()));
    suffix = std::min(suffix, static_cast<size_t>(
                                  std::mismatch(first.rbegin(), first.rend(), n.rbegin(), n.rend()).first - first.rbegin()));
  }
  // Prefix and suffix may not overlap in any name ("s1", "s1x": prefix "s1", suffix "").
  for (const std::string& n : names) suffix = std::min(suffix, n.size() - prefix);
  std::string out(first, 0, prefix);
  for (size_t k = 0; k < names.size(); ++k) {
    out += k ? ',' : '{';
    out.append(names[k], prefix, names[k].size() - prefix - suffix);
  }
  out += '}';
  return out.append(first, first.size() - suffix, suffix);
}

std::optional<Spread> spread_of(const std::vector<double>& values) {
  if (values.empty()) return std::nullopt;
  Spread s;
  s.n = static_cast<int>(values.size());
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / s.n;
  double squares = 0;
  for (double v : values) squares += (v - s.mean) * (v - s.mean);
  s.std = s.n > 1 ? std::sqrt(squares / (s.n - 1)) : std::numeric_limits<double>::quiet_NaN();
  s.min = *std::min_element(values.begin(), values.end());
  s.max = *std::max_element(values.begin(), values.end());
  return s;
}

bool MeanDifference::beyond_two_se() const { return std::abs(diff) > 2 * se; }

std::optional<MeanDifference> difference_of_means(const Spread& a, const Spread& b) {
  if (a.n < 2 || b.n < 2) return std::nullopt;
  MeanDifference d;
  d.diff = a.mean - b.mean;
  d.se = std::sqrt(a.std * a.std / a.n + b.std * b.std / b.n);
  return d;
}

PlotSeries mean_eval_curve(const std::string& name, const std::vector<const RunMetrics*>& runs, bool by_tokens) {
  MT_ASSERT(!runs.empty());
  // step -> (x, val loss of each run that evaluated at it)
  std::map<int64_t, std::pair<double, std::vector<double>>> at;
  for (const RunMetrics* m : runs)
    for (const EvalPoint& p : m->eval) {
      auto& [x, losses] = at[p.step];
      if (losses.empty()) x = by_tokens ? p.tokens : static_cast<double>(p.step);
      losses.push_back(p.val_loss);
    }
  PlotSeries s;
  s.name = name;
  for (const auto& [step, point] : at) {
    const auto& [x, losses] = point;
    if (losses.size() != runs.size()) continue;  // not every run evaluated here
    const Spread sp = *spread_of(losses);
    s.x.push_back(x);
    s.y.push_back(sp.mean);
    if (runs.size() == 1) continue;
    s.y_lo.push_back(sp.min);
    s.y_hi.push_back(sp.max);
  }
  return s;
}

}  // namespace mt
