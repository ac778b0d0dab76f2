// Learning-rate schedules: warmup, then constant / cosine / linear decay to the floor.
#include "mt/optim/lr_schedule.h"

#include <cmath>
#include <numbers>

#include "mt/ops/ops.h"

namespace mt {

namespace {

void validate(const LrScheduleConfig& c) {
  MT_CHECK(c.lr >= 0, "lr schedule: lr must be >= 0, got ", c.lr);
  MT_CHECK(c.warmup_steps >= 0, "lr schedule: warmup_steps must be >= 0, got ", c.warmup_steps);
  MT_CHECK(c.min_lr_ratio >= 0 && c.min_lr_ratio <= 1, "lr schedule: min_lr_ratio must be in [0, 1], got ",
           c.min_lr_ratio);
  MT_CHECK(c.decay == LrDecay::kConstant || c.total_steps > c.warmup_steps,
           "lr schedule: total_steps must exceed warmup_steps (", c.warmup_steps, ") for a decaying schedule, got ",
           c.total_steps);
}

}  // namespace

LrSchedule::LrSchedule(const LrScheduleConfig& config) : config_(config) { validate(config_); }

double LrSchedule::lr_at(int64_t step) const {
  MT_CHECK(step >= 0, "lr schedule: step must be >= 0, got ", step);
  const LrScheduleConfig& c = config_;
  if (step < c.warmup_steps) return c.lr * static_cast<double>(step + 1) / static_cast<double>(c.warmup_steps);
  if (c.decay == LrDecay::kConstant) return c.lr;
  double floor = c.min_lr_ratio * c.lr;
  if (step >= c.total_steps) return floor;
  double progress = static_cast<double>(step - c.warmup_steps) / static_cast<double>(c.total_steps - c.warmup_steps);
  double factor = c.decay == LrDecay::kCosine ? 0.5 * (1.0 + std::cos(std::numbers::pi * progress)) : 1.0 - progress;
  return floor + factor * (c.lr - floor);
}

StateDict LrSchedule::state_dict() const {
  return {{"lr", scalar_tensor(config_.lr, {DType::kF64})},
          {"warmup_steps", scalar_tensor(static_cast<double>(config_.warmup_steps), {DType::kI64})},
          {"total_steps", scalar_tensor(static_cast<double>(config_.total_steps), {DType::kI64})},
          {"decay", scalar_tensor(static_cast<double>(config_.decay), {DType::kI64})},
          {"min_lr_ratio", scalar_tensor(config_.min_lr_ratio, {DType::kF64})},
          {"step", scalar_tensor(static_cast<double>(step_), {DType::kI64})}};
}

void LrSchedule::load_state_dict(const StateDict& state) {
  StateDict own = state_dict();
  for (const auto& [key, t] : own) {
    auto it = state.find(key);
    MT_CHECK(it != state.end(), "lr schedule load_state_dict: missing key '", key, "'");
    MT_CHECK(it->second.numel() == 1 && it->second.dtype() == t.dtype(), "lr schedule load_state_dict: '", key,
             "' must be a one-element ", t.dtype(), " tensor, got ", it->second.describe());
  }
  for (const auto& kv : state)
    MT_CHECK(own.count(kv.first), "lr schedule load_state_dict: unexpected key '", kv.first, "'");
  auto get_int = [&](const char* k) { return static_cast<int64_t>(state.at(k).item()); };
  int64_t decay = get_int("decay");
  MT_CHECK(decay >= 0 && decay <= static_cast<int64_t>(LrDecay::kLinear),
           "lr schedule load_state_dict: 'decay' must be 0 (constant), 1 (cosine) or 2 (linear), got ", decay);
  LrScheduleConfig c{state.at("lr").item(), get_int("warmup_steps"), get_int("total_steps"),
                     static_cast<LrDecay>(decay), state.at("min_lr_ratio").item()};
  validate(c);
  int64_t step = get_int("step");
  MT_CHECK(step >= 0, "lr schedule load_state_dict: 'step' must be >= 0, got ", step);
  config_ = c;
  step_ = step;
}

}  // namespace mt
