// The memory planner of `moetrain estimate --gpus N --gpu-memory SIZE`: every setting of dist.ep,
// dist.zero, train.micro_batch and train.recompute a job of N ranks accepts for a recipe, with its memory
// per rank by the estimate (memory_estimate.h) and what it costs, fitting plans first, cheapest first.
#pragma once
#include <string>
#include <vector>

#include "mt/io/recipe.h"

namespace mt {

struct MemoryPlan {
  int ep = 1, zero = 0, micro_batch = 1, grad_accum = 1;
  Recompute recompute = Recompute::kNone;
  double weights_and_grads = 0, optimizer_state = 0, activations = 0;  // bytes per rank
  double recompute_flops = 0;     // extra forward FLOPs per step, as a fraction of the step's FLOPs
  double zero_gather_bytes = 0;   // per rank per step: ZeRO-1/2's broadcast of the updated parameters
  double grad_reduce_bytes = 0;   // per rank per step: the replicated gradients' all-reduce, or ZeRO-2's
                                  // reduce-scatter of every micro-batch (f32 gradients, ring algorithms)
  double all_to_all_bytes = 0;    // per rank per step: the expert all-to-alls (forward and backward)
  bool fits = false;              // total() <= the usable memory (Note [Planning memory])
  double total() const { return weights_and_grads + optimizer_state + activations; }
  std::string overrides() const;  // "dist.ep=8 dist.zero=1 train.micro_batch=4 train.recompute=none"
};

// All plans for `recipe` on `gpus` ranks of `gpu_bytes` each (the recipe's other settings kept), sorted:
// fitting first, then by recompute cost, then larger micro-batches, then ZeRO off, then less all-to-all.
std::vector<MemoryPlan> memory_plans(const Recipe& recipe, int gpus, double gpu_bytes);
// The share of a GPU's memory a plan may use (Note [Planning memory]).
constexpr double kUsableMemoryFraction = 0.9;

}  // namespace mt
