// Watchdog thread: wakes a few times per timeout, compares the last beat with the clock, and ends the
// process with a message (std::_Exit: no MPI call from this thread, no destructors racing the main one).
#include "mt/train/watchdog.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "mt/train/exit_status.h"

namespace mt {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

Watchdog::Watchdog(double timeout_s, int rank) : timeout_s_(timeout_s), rank_(rank) {
  if (timeout_s_ > 0) thread_ = std::thread([this] { watch(); });
}

Watchdog::~Watchdog() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    done_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void Watchdog::beat(int64_t step, const char* phase, bool watched) {
  step_ = step;
  phase_ = phase;
  watched_ = watched;
  last_beat_ms_ = now_ms();
}

void Watchdog::watch() {
  const auto period = std::chrono::milliseconds(std::clamp<int64_t>(static_cast<int64_t>(timeout_s_ * 250), 10, 1000));
  std::unique_lock<std::mutex> lock(mu_);
  while (!cv_.wait_for(lock, period, [this] { return done_; })) {
    int64_t last = last_beat_ms_;
    if (last < 0 || !watched_) continue;
    double idle_s = static_cast<double>(now_ms() - last) / 1000.0;
    if (idle_s < timeout_s_) continue;
    std::fprintf(stderr,
                 "moetrain: error on rank %d: no progress for %.0f s in %s of step %lld (dist.timeout = %g s): "
                 "another rank stalled or died, or a collective hangs; ending the job\n",
                 rank_, idle_s, phase_.load(), static_cast<long long>(step_.load()), timeout_s_);
    std::fflush(stderr);
    std::_Exit(static_cast<int>(ExitStatus::kWatchdog));
  }
}

}  // namespace mt
