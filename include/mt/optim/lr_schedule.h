// Learning-rate schedules: linear warmup, then constant, cosine or linear decay to a floor of
// min_lr_ratio * lr at total_steps (and the floor after). lr_at(step) is a pure function; the
// schedule also keeps its current step so it can be saved and resumed.
#pragma once
#include <cstdint>

#include "mt/core/state_dict.h"

namespace mt {

enum class LrDecay : uint8_t { kConstant, kCosine, kLinear };

struct LrScheduleConfig {
  double lr = 1e-3;
  int64_t warmup_steps = 0;  // step s < warmup_steps gets lr * (s + 1) / warmup_steps
  int64_t total_steps = 0;   // decay ends here; needed (> warmup_steps) unless kConstant
  LrDecay decay = LrDecay::kCosine;
  double min_lr_ratio = 0.1;  // the floor, as a fraction of lr
};

class LrSchedule {
 public:
  explicit LrSchedule(const LrScheduleConfig& config);
  double lr_at(int64_t step) const;
  double lr() const { return lr_at(step_); }  // at the current step
  void advance() { ++step_; }
  int64_t step() const { return step_; }
  const LrScheduleConfig& config() const { return config_; }

  // Config and step as scalar tensors: "lr", "warmup_steps", "total_steps", "decay", "min_lr_ratio", "step".
  StateDict state_dict() const;
  // Restores config and step (strict; the config is validated as in the constructor).
  void load_state_dict(const StateDict& state);

 private:
  LrScheduleConfig config_;
  int64_t step_ = 0;
};

}  // namespace mt
