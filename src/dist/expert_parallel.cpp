// Expert-parallel groups per layer size, and the autograd all-to-all the MoE dispatcher uses.
#include "mt/dist/expert_parallel.h"

#include <algorithm>

#include "mt/autograd/node.h"

namespace mt {

ExpertParallel::ExpertParallel(const Communicator& world, int max_size, const std::vector<int>& experts_per_block)
    : max_size_(max_size) {
  MT_CHECK(max_size >= 1, "dist.ep must be >= 1, got ", max_size);
  MT_CHECK(world.size() % max_size == 0, "dist.ep = ", max_size, " does not divide the job's ", world.size(),
           " ranks (expert-parallel groups are blocks of consecutive ranks)");
  for (size_t l = 0; l < experts_per_block.size(); ++l) {
    int e = experts_per_block[l];
    if (e <= 0) continue;
    int p = size_for(e);
    MT_CHECK(e % p == 0 && world.size() % p == 0, "dist.ep = ", max_size, ": block ", l, " has ", e,
             " experts, which cannot be split evenly over min(", e, ", dist.ep) = ", p, " ranks of a ", world.size(),
             "-rank job");
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
