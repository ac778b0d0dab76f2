// Range checks for CLI options whose errors name the option, the valid range and what was given
// ("--batch: expected an integer >= 1, got '0'"), in place of CLI11's generic range message; byte sizes.
#pragma once
#include <CLI/CLI.hpp>

#include <cstdint>
#include <limits>
#include <string>

namespace mt::cli {

// A whole number in [lo, hi].
CLI::Validator integer_in(int64_t lo, int64_t hi = std::numeric_limits<int32_t>::max());
enum class Upper { kClosed, kOpen };
// A finite number in [lo, hi] (Upper::kOpen: [lo, hi)); "nan" and "inf" are refused.
CLI::Validator number_in(double lo, double hi = std::numeric_limits<double>::max(), Upper upper = Upper::kClosed);

// "1MB" -> 2^20 bytes: units B, KB, MB, GB, binary (as NCCL-tests and nvidia-smi count); an error names
// `what` (the command and option) and the value.
int64_t parse_byte_size(const std::string& what, const std::string& text);

}  // namespace mt::cli
