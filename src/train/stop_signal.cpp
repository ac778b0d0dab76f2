// Signal handlers for graceful stop (async-signal-safe: only a sig_atomic_t flag and _exit).
#include "mt/train/stop_signal.h"

#include <csignal>
#include <unistd.h>

namespace mt {

namespace {
volatile std::sig_atomic_t g_stop = 0;

void on_signal(int sig) {
  if (g_stop) _exit(128 + sig);
  g_stop = 1;
}
}  // namespace

void install_stop_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

bool stop_requested() { return g_stop != 0; }
void clear_stop_request() { g_stop = 0; }

}  // namespace mt
