// Text generation from a GPT with its KV cache: temperature and top-k sampling with a seeded
// Philox generator (temperature 0 = greedy), so a seed always gives the same text.
#pragma once
#include <cstdint>
#include <vector>

#include "mt/nn/gpt.h"

namespace mt {

struct SamplingOptions {
  int max_tokens = 64;
  double temperature = 1.0;
  int top_k = 0;  // 0 = whole vocabulary
  uint64_t seed = 0;
  int32_t stop_token = -1;  // generation ends after this token (e.g. end-of-text); -1 = none
};

// Returns prompt + generated ids. The model is put in eval mode for the call and restored after.
std::vector<int32_t> generate_tokens(GPT& model, const std::vector<int32_t>& prompt, const SamplingOptions& options);

}  // namespace mt
