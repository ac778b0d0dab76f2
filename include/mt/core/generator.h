// Generator: a seed plus a counter offset into the Philox stream. Each random op reserves a
// range of counters, so results do not depend on the device or on thread scheduling.
#pragma once
#include <cstdint>

namespace mt {

struct GeneratorState {
  uint64_t seed = 0;
  uint64_t offset = 0;
};

class Generator {
 public:
  explicit Generator(uint64_t seed = 0) : state_{seed, 0} {}
  // Reserves n draws; returns the offset where they start (relative to the base, while one is set).
  uint64_t reserve(uint64_t n) {
    uint64_t start = state_.offset;
    state_.offset += (n + 3) / 4 * 4;  // keep each op's draws on whole Philox counters
    return device_base_ ? start - base_offset_ : start;
  }
  uint64_t seed() const { return state_.seed; }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState s) { state_ = s; }

  // Note [The captured step] (mt/train/train_step.h): while a device base is set (a u64 in the memory of
  // the device the draws are made on), reserve() returns offsets relative to the offset at the time it was
  // set, and the kernels add the base's value when they run, so work captured once draws what the same
  // work queued eagerly would, from whatever offset the base holds at each replay. nullptr: unset.
  void set_device_base(const uint64_t* base) {
    device_base_ = base;
    base_offset_ = state_.offset;
  }
  const uint64_t* device_base() const { return device_base_; }

 private:
  GeneratorState state_;
  const uint64_t* device_base_ = nullptr;
  uint64_t base_offset_ = 0;
};

}  // namespace mt
