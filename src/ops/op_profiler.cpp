// OpProfiler: CUDA event pairs around each timed call (a pool reused step after step, read once per
// step after one synchronize), or the wall clock around each call on CPU.
#include "mt/ops/op_profiler.h"

#include <chrono>
#include <vector>

#include "mt/core/error.h"

#ifdef MT_WITH_CUDA
#include "mt/core/cuda_context.h"
#endif

namespace mt {

const char* op_category_name(OpCategory c) {
  switch (c) {
    case OpCategory::kGemm: return "GEMM";
    case OpCategory::kAttention: return "attention";
    case OpCategory::kNorm: return "layer norm";
    case OpCategory::kElementwise: return "elementwise (add, gelu, casts, copies, fills)";
    case OpCategory::kIndexing: return "indexing (embedding, gather, scatter)";
    case OpCategory::kMoeRouter: return "MoE router (forward: gate GEMM, routing kernel, aux loss)";
    case OpCategory::kMoeDispatch: return "MoE dispatch (permute, its backward)";
    case OpCategory::kMoeCombine: return "MoE combine (unpermute, its backward)";
    case OpCategory::kLoss: return "cross-entropy / distillation loss";
    case OpCategory::kOptimizer: return "optimizer (clip + AdamW/SGD)";
    case OpCategory::kCommunication: return "communication (NCCL)";
    case OpCategory::kOther: return "other (softmax, reductions, top-k, random)";
  }
  return "?";
}

double StepProfile::busy_ms() const {
  double sum = 0;
  for (double m : ms) sum += m;
  return sum;
}

using Clock = std::chrono::steady_clock;

struct OpProfiler::State {
  StepProfile step;  // CPU: the totals so far; CUDA: filled by end_step
  Clock::time_point step_start;
#ifdef MT_WITH_CUDA
  std::vector<std::unique_ptr<CudaEvent>> events;  // pairs: start, stop
  int64_t used = 0;                                // events recorded this step
  struct Record {
    OpCategory category;
    const char* op;
    int64_t start;  // index of its start event
  };
  std::vector<Record> records;
  std::unique_ptr<CudaEvent> step_begin, step_end;  // made on the first CUDA step
#endif
};

OpProfiler::OpProfiler(Device device) : device_(device), state_(std::make_unique<State>()) {
  MT_CHECK(active_ == nullptr, "OpProfiler: another profiler is already active");
  active_ = this;
}

OpProfiler::~OpProfiler() { active_ = nullptr; }

void OpProfiler::begin_step() {
  state_->step = StepProfile{};
  state_->step_start = Clock::now();
#ifdef MT_WITH_CUDA
  if (device_.is_cuda()) {
    state_->used = 0;
    state_->records.clear();
    if (!state_->step_begin) {
      state_->step_begin = std::make_unique<CudaEvent>();
      state_->step_end = std::make_unique<CudaEvent>();
    }
    state_->step_begin->record(current_stream(device_.index));
  }
#endif
}

StepProfile OpProfiler::end_step() {
  State& s = *state_;
#ifdef MT_WITH_CUDA
  if (device_.is_cuda()) {
    MT_CHECK(s.step_begin != nullptr, "OpProfiler: end_step before begin_step");
    s.step_end->record(current_stream(device_.index));
    s.step_end->synchronize();
    s.step.step_ms = s.step_begin->elapsed_ms(*s.step_end);
    for (const State::Record& r : s.records) {
      const double ms = s.events[r.start]->elapsed_ms(*s.events[r.start + 1]);
      s.step.ms[static_cast<int>(r.category)] += ms;
      s.step.calls[static_cast<int>(r.category)] += 1;
      s.step.by_op[r.op].add(ms);
    }
    s.records.clear();
    s.used = 0;
    return s.step;
  }
#endif
  s.step.step_ms = std::chrono::duration<double, std::milli>(Clock::now() - s.step_start).count();
  return s.step;
}

int64_t OpProfiler::start(OpCategory) {
#ifdef MT_WITH_CUDA
  if (device_.is_cuda()) {
    State& s = *state_;
    while (static_cast<int64_t>(s.events.size()) < s.used + 2) s.events.push_back(std::make_unique<CudaEvent>());
    const int64_t mark = s.used;
    s.used += 2;
    s.events[mark]->record(current_stream(device_.index));
    return mark;
  }
#endif
  return std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
}

void OpProfiler::stop(OpCategory c, const char* op, int64_t mark) {
  State& s = *state_;
#ifdef MT_WITH_CUDA
  if (device_.is_cuda()) {
    s.events[mark + 1]->record(current_stream(device_.index));
    s.records.push_back({c, op, mark});
    return;
  }
#endif
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(Clock::now().time_since_epoch()).count();
  const double ms = static_cast<double>(now - mark) * 1e-6;
  s.step.ms[static_cast<int>(c)] += ms;
  s.step.calls[static_cast<int>(c)] += 1;
  s.step.by_op[op].add(ms);
}

OpProfiler::Scope::Scope(OpCategory category) : previous_(scope_) { scope_ = static_cast<int>(category); }

OpProfiler::Scope::~Scope() { scope_ = previous_; }

}  // namespace mt
