// Watchdog: ends the process when training makes no progress for too long (a rank that stalled, or a
// collective waiting for a rank that is gone), so a multi-rank job fails with a message naming the
// rank, the step and the phase instead of hanging. Under mpirun the exit of one rank ends the job.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace mt {

class Watchdog {
 public:
  // timeout_s <= 0: off. Starts watching at the first beat.
  Watchdog(double timeout_s, int rank);
  ~Watchdog();
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

  // Progress: `phase` (a string literal) of `step` begins now. An unwatched phase (a checkpoint write,
  // whose length grows with the model) is never timed out.
  void beat(int64_t step, const char* phase, bool watched = true);

 private:
  void watch();

  double timeout_s_;
  int rank_;
  std::atomic<int64_t> last_beat_ms_{-1};
  std::atomic<int64_t> step_{0};
  std::atomic<const char*> phase_{""};
  std::atomic<bool> watched_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;
};

}  // namespace mt
