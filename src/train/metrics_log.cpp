// MetricsLog: JSON lines with numbers printed exactly enough to read back (%.9g), NaN as null,
// strings quoted by json_quote.
#include "mt/train/metrics_log.h"

#include <cerrno>
#include <cmath>
#include <cstring>

#include "mt/core/error.h"
#include "mt/io/json.h"

namespace mt {

MetricsLog::MetricsLog(const std::string& path) : path_(path) {
  file_ = std::fopen(path.c_str(), "a");
  MT_CHECK(file_ != nullptr, "cannot open metrics log ", path, ": ", std::strerror(errno));
}

MetricsLog::~MetricsLog() {
  if (file_) std::fclose(file_);
}

void MetricsLog::write(const std::vector<std::pair<std::string, double>>& fields,
                       const std::vector<std::pair<std::string, std::string>>& text) {
  std::string line = "{";
  bool first = true;
  for (const auto& [k, v] : fields) {
    char buf[64];
    if (std::isfinite(v)) std::snprintf(buf, sizeof(buf), "%.9g", v);
    else std::snprintf(buf, sizeof(buf), "null");
    line += (first ? "" : ", ") + json_quote(k) + ": " + buf;
    first = false;
  }
  for (const auto& [k, v] : text) {
    line += (first ? "" : ", ") + json_quote(k) + ": " + json_quote(v);
    first = false;
  }
  line += "}\n";
  // A failed write (a full disk) is an error: metrics lost in silence are worse than a stopped run.
  errno = 0;
  const bool ok = std::fputs(line.c_str(), file_) >= 0 && std::fflush(file_) == 0;
  MT_CHECK(ok, "cannot write the metrics log ", path_, ": ", errno ? std::strerror(errno) : "write error");
}

}  // namespace mt
