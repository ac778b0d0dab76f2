// Did-you-mean hints for misspelt recipe keys and values, by edit distance.
#pragma once
#include <string>
#include <vector>

namespace mt {

// Levenshtein distance (insertions, deletions, substitutions each cost 1).
int edit_distance(const std::string& a, const std::string& b);

// " (did you mean 'x'?)" for the closest candidate when it is close enough (distance <= max(2,
// |word| / 3)), else "" — ready to append to an error message.
std::string did_you_mean(const std::string& word, const std::vector<std::string>& candidates);

}  // namespace mt
