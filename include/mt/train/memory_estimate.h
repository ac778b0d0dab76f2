// Memory per rank of a training run, from the config alone: weights in the compute dtype, f32
// gradients, AdamW's two f32 moments and (for bf16/f16 weights) an f32 master per parameter, with the
// experts split by expert parallelism and the replicated parameters' optimizer state by ZeRO-1 (and
// their gradients by ZeRO-2); and the
// activations of one micro-batch under the config's recompute mode (Note [Activation memory]).
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
// as the trainer's (mt/dist/process_groups.h) when dist.ep does not fit.
MemoryPerRank memory_per_rank(const GPTConfig& config, bool half_weights, int ranks, int ep, int zero);

// The activation memory of one micro-batch of `sequences` sequences of config.seq_len tokens on one
// rank, in bytes, under config.recompute (Note [Activation memory] in memory_estimate.cpp).
struct ActivationMemory {
  double kept = 0;        // what the forward keeps for the backward, all blocks
  double head = 0;        // the final norm's input and output, the logits and their gradient
  double recomputed = 0;  // one block's recomputed part and its gradients, alive during its backward
  // The backward's high-water mark: the kept tensors plus the larger of its two big moments.
  double peak() const { return kept + (head > recomputed ? head : recomputed); }
};
ActivationMemory activation_memory(const GPTConfig& config, bool half_weights, int64_t sequences);

}  // namespace mt
