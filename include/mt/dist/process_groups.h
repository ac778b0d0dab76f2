// ProcessGroups: every group of ranks a run communicates over, made once from the world and passed
// explicitly: the world (replicated gradients, loss means) and, per expert-parallel size P > 1 that a
// MoE layer uses, its ExpertGroups (DeepSpeed-MoE's layout: a layer of E experts splits them over
// P = min(E, dist.ep) consecutive ranks, E / P each).
#pragma once
#include <algorithm>
#include <map>
#include <vector>

#include "mt/dist/communicator.h"

namespace mt {

// Checks that dist.ep = `max_size` divides the job's `ranks`, and returns min(experts, max_size) for a
// MoE layer (block `block`) after checking that its experts split evenly over that many ranks and that
// the group size divides the ranks. Errors name dist.ep and the block.
void check_expert_parallel(int max_size, int ranks);
int expert_parallel_size(int block, int experts, int max_size, int ranks);

// The groups of one expert-parallel size P: the ep groups are consecutive blocks of P ranks [0..P-1],
// [P..2P-1], ... (a layer's experts split over them, tokens exchanged by all-to-all); expert_dp joins
// the ranks with the same index inside their block (one expert's replicas, its gradients reduced there).
struct ExpertGroups {
  Communicator ep, expert_dp;
};

class ProcessGroups {
 public:
  // The groups for MoE layers of the given expert counts (0 = a dense block) under `max_ep` (dist.ep).
  // Errors name dist.ep and the layer whose experts cannot be split evenly. A collective.
  ProcessGroups(const Communicator& world, int max_ep, const std::vector<int>& experts_per_block);

  const Communicator& world() const { return world_; }
  int max_ep() const { return max_ep_; }
  // min(experts, dist.ep): the expert-parallel size of a layer with `experts` experts.
  int size_for(int experts) const { return std::min(experts, max_ep_); }
  // The groups of a layer with `experts` experts; null when its experts are all local (size 1).
  const ExpertGroups* groups_for(int experts) const;

 private:
  Communicator world_;
  int max_ep_;
  std::map<int, ExpertGroups> expert_;  // by expert-parallel size > 1
};

}  // namespace mt
