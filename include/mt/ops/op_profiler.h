// OpProfiler: GPU time of a training step by category (GEMM, attention, norms, ...). Kernel-table calls
// (KernelCall in kernel_table.h) and library calls outside the table (NCCL in the communicator) run
// through OpProfiler::time; while a profiler is active each one is timed (CUDA events on the current
// stream, or the wall clock on CPU); while none is, time() is one branch. `moetrain bench step` uses it.
#pragma once
#include <array>
#include <map>
#include <string>
#include <cstdint>
#include <memory>
#include <utility>

#include "mt/core/device.h"

namespace mt {

enum class OpCategory : uint8_t {
  kGemm,
  kAttention,
  kNorm,
  kElementwise,
  kIndexing,
  kMoeRouter,
  kMoeDispatch,
  kMoeCombine,
  kLoss,
  kOptimizer,
  kCommunication,
  kOther,
};
inline constexpr int kOpCategories = 12;

// "GEMM", "attention", ...: the name a table row gives the category.
const char* op_category_name(OpCategory c);

struct OpTotal {
  double ms = 0;
  int64_t calls = 0;
  double max_ms = 0;  // the slowest single call: a large tensor among many small ones
  void add(double call_ms) {
    ms += call_ms;
    calls += 1;
    max_ms = call_ms > max_ms ? call_ms : max_ms;
  }
};

struct StepProfile {
  std::array<double, kOpCategories> ms{};      // summed time of each category's calls
  std::array<int64_t, kOpCategories> calls{};  // their number
  std::map<std::string, OpTotal> by_op;        // the same by the op that made the call ("add_", "cast", ...)
  double step_ms = 0;                          // begin_step to end_step on the stream (the wall clock on CPU)
  double busy_ms() const;                      // the sum of ms
};

class OpProfiler {
 public:
  // Times calls on `device` (calls on other devices run untimed) until destroyed. One at a time.
  explicit OpProfiler(Device device);
  ~OpProfiler();
  OpProfiler(const OpProfiler&) = delete;
  OpProfiler& operator=(const OpProfiler&) = delete;

  // Marks a step's start on the device's current stream; end_step marks its end, waits for the
  // device and returns the step's totals (and starts the next step's from zero).
  void begin_step();
  StepProfile end_step();
  // Whether a profiler is timing calls now (its events cannot be read from a captured CUDA graph).
  static bool any_active() { return active_ != nullptr; }

  // Runs fn, timed as `category` when a profiler is active for `device`. A call made inside another
  // timed call (a kernel calling the table) counts with its caller only.
  // `op` names the call in the per-op totals (a string literal: kept, not copied).
  template <typename Fn>
  static void time(OpCategory category, Device device, Fn&& fn, const char* op = nullptr) {
    if (active_ == nullptr) {
      fn();
      return;
    }
    active_->time_call(category, device, op, std::forward<Fn>(fn));
  }

  // While a Scope lives, timed calls count as its category whatever their own: the optimizer phase
  // (its norm reductions and scaling are elementwise kernels), the backward of an MoE dispatch.
  class Scope {
   public:
    explicit Scope(OpCategory category);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    int previous_;
  };

 private:
  template <typename Fn>
  void time_call(OpCategory category, Device device, const char* op, Fn&& fn) {
    if (device != device_ || depth_ > 0) {
      fn();
      return;
    }
    const OpCategory c = scope_ >= 0 ? static_cast<OpCategory>(scope_) : category;
    Depth depth(depth_);
    const int64_t mark = start(c);
    fn();
    stop(c, op ? op : op_category_name(c), mark);
  }

  struct Depth {
    explicit Depth(int& d) : d_(d) { ++d_; }
    ~Depth() { --d_; }
    int& d_;
  };

  int64_t start(OpCategory c);          // records the start; returns what stop needs
  void stop(OpCategory c, const char* op, int64_t mark);

  struct State;  // the CUDA events, or the CPU clock's totals
  Device device_;
  int depth_ = 0;
  std::unique_ptr<State> state_;

  static inline OpProfiler* active_ = nullptr;
  static inline int scope_ = -1;  // a Scope's category, or -1
};

}  // namespace mt
