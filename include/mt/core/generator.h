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
  // Reserves n draws; returns the offset where they start.
  uint64_t reserve(uint64_t n) {
    uint64_t start = state_.offset;
    state_.offset += (n + 3) / 4 * 4;  // keep each op's draws on whole Philox counters
    return start;
  }
  uint64_t seed() const { return state_.seed; }
  GeneratorState state() const { return state_; }
  void set_state(GeneratorState s) { state_ = s; }

 private:
  GeneratorState state_;
};

}  // namespace mt
