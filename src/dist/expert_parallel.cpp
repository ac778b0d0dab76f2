// Expert-parallel groups per layer size, and the autograd all-to-all the MoE dispatcher uses.
#include "mt/dist/expert_parallel.h"

#include <algorithm>

#include "mt/graph/node.h"

namespace mt {

void check_expert_parallel(int max_size, int ranks) {
  MT_CHECK(max_size >= 1, "dist.ep must be >= 1, got ", max_size);
  MT_CHECK(ranks % max_size == 0, "dist.ep = ", max_size, " does not divide the job's ", ranks,
           " ranks (expert-parallel groups are blocks of consecutive ranks)");
}

int expert_parallel_size(int block, int experts, int max_size, int ranks) {
  int p = std::min(experts, max_size);
  MT_CHECK(experts % p == 0 && ranks % p == 0, "dist.ep = ", max_size, ": block ", block, " has ", experts,
           " experts, which cannot be split evenly over min(", experts, ", dist.ep) = ", p, " ranks of a ", ranks,
           "-rank job");
  return p;
}

ExpertParallel::ExpertParallel(const Communicator& world, int max_size, const std::vector<int>& experts_per_block)
    : max_size_(max_size) {
  check_expert_parallel(max_size, world.size());
  for (size_t l = 0; l < experts_per_block.size(); ++l) {
    if (experts_per_block[l] <= 0) continue;
    int p = expert_parallel_size(static_cast<int>(l), experts_per_block[l], max_size, world.size());
    if (p > 1 && !groups_.count(p)) groups_.emplace(p, make_process_groups(world, p));
  }
}

const ProcessGroups* ExpertParallel::groups_for(int experts) const {
  auto it = groups_.find(size_for(experts));
  return it == groups_.end() ? nullptr : &it->second;
}

Tensor all_to_all(const Tensor& x, const Communicator& group) {
  MT_CHECK(x.dim() >= 1 && x.size(0) % group.size() == 0, "all_to_all: the leading dim of ", x.describe(),
           " must be a multiple of the group size ", group.size());
  Tensor in = x.detach().contiguous();
  Tensor out = Tensor::empty(in.shape(), in.dtype(), in.device());
  group.all_to_all(in, out);
  Communicator g = group;
  record_function("AllToAllBackward", {x}, {out}, [g](const std::vector<Tensor>& grads) {
    Tensor gin = grads[0].contiguous();
    Tensor gout = Tensor::empty(gin.shape(), gin.dtype(), gin.device());
    g.all_to_all(gin, gout);
    return std::vector<Tensor>{gout};
  });
  return out;
}

}  // namespace mt
