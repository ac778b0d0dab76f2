// Did-you-mean hints for misspelt recipe keys and values (see recipe_did_you_mean.h).
#include "mt/io/recipe_did_you_mean.h"

#include <algorithm>
#include <numeric>

namespace mt {

int edit_distance(const std::string& a, const std::string& b) {
  std::vector<int> row(b.size() + 1);  // row[j] = distance(a[0..i), b[0..j))
  std::iota(row.begin(), row.end(), 0);
  for (std::size_t i = 1; i <= a.size(); ++i) {
    int diagonal = row[0];
    row[0] = static_cast<int>(i);
    for (std::size_t j = 1; j <= b.size(); ++j) {
      int substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      diagonal = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, substitute});
    }
  }
  return row[b.size()];
}

std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates) {
  const std::string* best = nullptr;
  int best_distance = 0;
  for (const auto& c : candidates) {
    int d = edit_distance(word, c);
    if (best == nullptr || d < best_distance) best = &c, best_distance = d;
  }
  const int limit = std::max<int>(2, static_cast<int>(word.size()) / 3);
  if (best == nullptr || best_distance > limit) return "";
  return " (did you mean '" + *best + "'?)";
}

}  // namespace mt
