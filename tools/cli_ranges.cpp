// CLI option range validators (see cli_ranges.h).
#include "cli_ranges.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>

#include "mt/core/error.h"

namespace mt::cli {

CLI::Validator integer_in(int64_t lo, int64_t hi) {
  const bool unbounded = hi == std::numeric_limits<int32_t>::max();
  const std::string range = unbounded ? str_cat(">= ", lo) : str_cat("in [", lo, ", ", hi, "]");
  return CLI::Validator(
      [lo, hi, range](std::string& text) -> std::string {
        int64_t v = 0;
        const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
        if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi)
          return str_cat("expected an integer ", range, ", got '", text, "'");
        return "";
      },
      str_cat("INT ", range));
}

CLI::Validator number_in(double lo, double hi, Upper upper) {
  const std::string range = hi == std::numeric_limits<double>::max()
                                ? str_cat(">= ", lo)
                                : str_cat("in [", lo, ", ", hi, upper == Upper::kOpen ? ")" : "]");
  return CLI::Validator(
      [lo, hi, upper, range](std::string& text) -> std::string {
        char* end = nullptr;
        const double v = std::strtod(text.c_str(), &end);
        const bool in_range = v >= lo && (upper == Upper::kOpen ? v < hi : v <= hi);
        if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(v) || !in_range)
          return str_cat("expected a finite number ", range, ", got '", text, "'");
        return "";
      },
      str_cat("NUMBER ", range));
}

int64_t parse_byte_size(const std::string& what, const std::string& text) {
  size_t digits = 0;
  while (digits < text.size() && std::isdigit(static_cast<unsigned char>(text[digits]))) ++digits;
  std::string unit = text.substr(digits);
  int64_t scale = unit == "KB" ? 1 << 10 : unit == "MB" ? 1 << 20 : unit == "GB" ? 1 << 30 : unit == "B" ? 1 : 0;
  MT_CHECK(digits > 0 && digits <= 6 && scale > 0, what, ": expected a size like 1MB, 64MB or 141GB (units B, KB, MB, ",
           "GB), got '", text, "'");
  return std::stoll(text.substr(0, digits)) * scale;
}

}  // namespace mt::cli
