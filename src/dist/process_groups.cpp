// ProcessGroups: the world split into expert-parallel and expert-data-parallel groups, checked
// against dist.ep.
#include "mt/dist/process_groups.h"

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

ProcessGroups::ProcessGroups(const Communicator& world, int max_ep, const std::vector<int>& experts_per_block)
    : world_(world), max_ep_(max_ep) {
  check_expert_parallel(max_ep, world.size());
  const int w = world.size(), r = world.rank();
  for (size_t l = 0; l < experts_per_block.size(); ++l) {
    if (experts_per_block[l] <= 0) continue;
    const int p = expert_parallel_size(static_cast<int>(l), experts_per_block[l], max_ep, w);
    if (p > 1 && !expert_.count(p)) expert_.emplace(p, ExpertGroups{world.split(r / p, r), world.split(r % p, r)});
  }
}

const ExpertGroups* ProcessGroups::groups_for(int experts) const {
  auto it = expert_.find(size_for(experts));
  return it == expert_.end() ? nullptr : &it->second;
}

}  // namespace mt
