// Expert parallelism, as DeepSpeed-MoE does it: a MoE layer with E experts splits them over an
// expert-parallel group of P = min(E, dist.ep) consecutive ranks (E / P experts each); tokens travel
// to their expert's rank and back by all-to-all. Ranks holding the same experts form the layer's
// expert-data-parallel group, over which those experts' gradients are reduced.
#pragma once
#include <map>
#include <vector>

#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"

namespace mt {

// Checks that dist.ep = `max_size` divides the job's `ranks`, and returns min(experts, max_size) for a
// MoE layer (block `block`) after checking that its experts split evenly over that many ranks and that
// the group size divides the ranks. Errors name dist.ep and the block.
void check_expert_parallel(int max_size, int ranks);
int expert_parallel_size(int block, int experts, int max_size, int ranks);

class ExpertParallel {
 public:
  // The groups for MoE layers of the given expert counts (0 = a dense block) under `max_size`
  // (dist.ep). Errors name dist.ep and the layer whose experts cannot be split evenly.
  ExpertParallel(const Communicator& world, int max_size, const std::vector<int>& experts_per_block);

  int max_size() const { return max_size_; }
  // min(experts, dist.ep): the expert-parallel size of a layer with `experts` experts.
  int size_for(int experts) const { return std::min(experts, max_size_); }
  // The groups of a layer with `experts` experts; null when its experts are all local (size 1).
  const ProcessGroups* groups_for(int experts) const;

 private:
  int max_size_;
  std::map<int, ProcessGroups> groups_;  // by expert-parallel size > 1
};

// Differentiable all-to-all over `group` (P ranks): x (P * n, ...) -> (P * n, ...), chunk j of the
// leading dim goes to rank j and chunk i of the result came from rank i. Its backward is the same
// exchange applied to the gradient. Every rank of the group must call it with the same shape.
Tensor all_to_all(const Tensor& x, const Communicator& group);

}  // namespace mt
