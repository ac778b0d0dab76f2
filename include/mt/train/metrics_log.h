// MetricsLog: appends one JSON object per line to <run_dir>/metrics.jsonl (step, loss, lr, ...),
// flushed per line so a crash loses at most the line being written.
#pragma once
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

namespace mt {

class MetricsLog {
 public:
  explicit MetricsLog(const std::string& path);  // appends; creates the file if needed
  ~MetricsLog();
  MetricsLog(const MetricsLog&) = delete;
  MetricsLog& operator=(const MetricsLog&) = delete;

  // One record: numeric fields in the given order, plus optional string fields. A failed write throws
  // mt::Error naming the file and the OS error.
  void write(const std::vector<std::pair<std::string, double>>& fields,
             const std::vector<std::pair<std::string, std::string>>& text = {});

 private:
  std::string path_;
  std::FILE* file_ = nullptr;
};

}  // namespace mt
