// Progress line formatting and terminal handling.
#include "mt/train/progress.h"

#include <unistd.h>

#include <cstdio>

namespace mt {

ProgressStyle detect_progress_style(const std::string& setting) {
  if (setting == "line") return ProgressStyle::kLine;
  if (setting == "plain") return ProgressStyle::kPlain;
  return isatty(STDOUT_FILENO) ? ProgressStyle::kLine : ProgressStyle::kPlain;
}

std::string format_duration(double seconds) {
  if (!(seconds >= 0) || seconds > 1e8) return "?";
  int64_t s = static_cast<int64_t>(seconds + 0.5);
  char buf[32];
  if (s >= 3600) std::snprintf(buf, sizeof(buf), "%ldh%02ldm", static_cast<long>(s / 3600), static_cast<long>(s % 3600 / 60));
  else if (s >= 60) std::snprintf(buf, sizeof(buf), "%ldm%02lds", static_cast<long>(s / 60), static_cast<long>(s % 60));
  else std::snprintf(buf, sizeof(buf), "%lds", static_cast<long>(s));
  return buf;
}

void Progress::update(const ProgressFields& f) {
  bool due = f.step == f.total || (every_ > 0 && f.step % every_ == 0);
  if (style_ == ProgressStyle::kPlain && !due) return;
  char aux[32] = "";
  if (f.aux >= 0) std::snprintf(aux, sizeof(aux), " | aux %.4f", f.aux);
  char tps[32];
  if (f.tokens_per_s >= 1e4) std::snprintf(tps, sizeof(tps), "%.1fk", f.tokens_per_s / 1e3);
  else std::snprintf(tps, sizeof(tps), "%.0f", f.tokens_per_s);
  char buf[256];
  std::snprintf(buf, sizeof(buf), "step %ld/%ld | loss %.4f%s | lr %.2e | %s tok/s | ETA %s",
                static_cast<long>(f.step), static_cast<long>(f.total), f.loss, aux, f.lr, tps,
                format_duration(f.eta_s).c_str());
  if (style_ == ProgressStyle::kLine) {
    std::printf("\r\033[K%s", buf);
    line_open_ = true;
  } else {
    std::printf("%s\n", buf);
  }
  std::fflush(stdout);
}

void Progress::message(const std::string& text) {
  if (line_open_) std::printf("\r\033[K");
  std::printf("%s\n", text.c_str());
  line_open_ = false;
  std::fflush(stdout);
}

void Progress::finish() {
  if (line_open_) std::printf("\n");
  line_open_ = false;
  std::fflush(stdout);
}

}  // namespace mt
