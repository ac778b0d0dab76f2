// Expands file patterns (POSIX glob: * ? [...]) into sorted path lists, for shard arguments such as
// "data/kjv/train_*.bin". A pattern that matches nothing is an error naming it.
#pragma once
#include <string>
#include <vector>

namespace mt {

// Each pattern's matches, sorted; patterns in the order given. A plain path must exist.
std::vector<std::string> expand_file_patterns(const std::vector<std::string>& patterns);

}  // namespace mt
