// Memory per rank of a training run, from the config alone: weights in the compute dtype, f32
// gradients, AdamW's two f32 moments and (for bf16/f16 weights) an f32 master per parameter, with the
// experts split by expert parallelism and the replicated parameters' optimizer state by ZeRO-1.
// Activations are not counted.
#pragma once
#include <cstdint>

#include "mt/nn/gpt.h"

namespace mt {

struct MemoryPerRank {
  double weights_and_grads = 0;  // bytes
  double optimizer_state = 0;    // bytes
  double total() const { return weights_and_grads + optimizer_state; }
};

// ranks: the job's ranks; ep: dist.ep (each MoE layer over min(E, ep) ranks); zero: dist.zero. Errors
// as the trainer's (mt/dist/expert_parallel.h) when dist.ep does not fit.
MemoryPerRank memory_per_rank(const GPTConfig& config, bool half_weights, int ranks, int ep, int zero);

}  // namespace mt
