// Per-rank training memory under expert parallelism and ZeRO-1 (parameter counts from count_parameters).
#include "mt/train/memory_estimate.h"

#include "mt/dist/expert_parallel.h"

namespace mt {

MemoryPerRank memory_per_rank(const GPTConfig& config, bool half_weights, int ranks, int ep, int zero) {
  check_expert_parallel(ep, ranks);
  ParamCounts pc = count_parameters(config);
  double experts_here = 0, experts_all = 0;
  for (size_t l = 0; l < pc.expert_params.size(); ++l) {
    if (pc.expert_params[l] == 0) continue;
    int p = expert_parallel_size(static_cast<int>(l), config.experts_per_block[l], ep, ranks);
    experts_all += static_cast<double>(pc.expert_params[l]);
    experts_here += static_cast<double>(pc.expert_params[l]) / p;
  }
  double replicated = static_cast<double>(pc.total) - experts_all;
  const double weight_bytes = half_weights ? 2 : 4;
  const double grad_bytes = 4;                          // f32 always: Note [f32 main gradients] in mt/graph/node.h
  const double state_bytes = half_weights ? 4 + 8 : 8;  // f32 master (half only) + two f32 moments
  MemoryPerRank m;
  m.weights_and_grads = (replicated + experts_here) * (weight_bytes + grad_bytes);
  m.optimizer_state = (replicated / (zero == 1 ? ranks : 1) + experts_here) * state_bytes;
  return m;
}

}  // namespace mt
