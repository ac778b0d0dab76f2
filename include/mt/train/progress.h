// Progress reporting: a live, rewritten line on a terminal; plain lines every N steps when the
// output is a file or pipe (log.progress: auto | line | plain).
#pragma once
#include <cstdint>
#include <string>

namespace mt {

enum class ProgressStyle { kLine, kPlain };

ProgressStyle detect_progress_style(const std::string& setting);  // "auto" looks at isatty(stdout)
std::string format_duration(double seconds);                      // "1h02m", "3m20s", "45s"

struct ProgressFields {
  int64_t step = 0, total = 0;
  double loss = 0, lr = 0, tokens_per_s = 0, eta_s = 0;
  double aux = -1;  // < 0: no MoE aux loss
};

class Progress {
 public:
  Progress(ProgressStyle style, int every) : style_(style), every_(every) {}
  void update(const ProgressFields& f);
  // Prints a message on its own line (the live line is redrawn after it).
  void message(const std::string& text);
  void finish();

 private:
  ProgressStyle style_;
  int every_;
  bool line_open_ = false;
};

}  // namespace mt
