// ProcessGroups: the world split into expert-parallel, expert-data-parallel and node groups, checked
// against dist.ep and dist.node_size.
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

void check_node_size(int node_size, int ranks, int ep_size) {
  MT_CHECK(node_size >= 1 && ranks % node_size == 0, "dist.node_size = ", node_size, " does not divide the job's ",
           ranks, " ranks (a node holds a block of consecutive ranks)");
  MT_CHECK(ep_size % node_size == 0 || node_size % ep_size == 0, "dist.node_size = ", node_size,
           ": an expert-parallel group of ", ep_size, " ranks (dist.ep) would span part of a node; it must lie within "
           "one node or span whole nodes (one of the two must divide the other)");
}

int ranks_per_node(const Communicator& world) {
  Communicator node = world.split_by_node();
  // Every host the same number of ranks, each host a block of consecutive world ranks.
  const int n = node.size();
  const bool blocks = node.rank() == world.rank() % n;
  const double lowest = world.all_reduce(blocks ? n : 0.0, ReduceKind::kMin);
  const double highest = world.all_reduce(static_cast<double>(n), ReduceKind::kMax);
  return lowest == highest ? n : 1;
}

ProcessGroups::ProcessGroups(const Communicator& world, int max_ep, const std::vector<int>& experts_per_block,
                             int node_size)
    : world_(world), max_ep_(max_ep), node_size_(node_size) {
  check_expert_parallel(max_ep, world.size());
  // Note [Hierarchical all-to-all]: a declared node size must fit every group; the detected one is used
  // where it fits (elsewhere the exchange stays flat, which is always correct).
  const bool declared = node_size > 0;
  const int w = world.size(), r = world.rank();
  if (declared) check_node_size(node_size, w, max_ep);
  else node_size_ = max_ep > 1 ? ranks_per_node(world) : 1;
  for (size_t l = 0; l < experts_per_block.size(); ++l) {
    if (experts_per_block[l] <= 0) continue;
    const int p = expert_parallel_size(static_cast<int>(l), experts_per_block[l], max_ep, w);
    if (p == 1 || expert_.count(p)) continue;
    if (declared) check_node_size(node_size_, w, p);
    ExpertGroups g{world.split(r / p, r), world.split(r % p, r), std::nullopt, std::nullopt};
    if (node_size_ > 1 && node_size_ < p && p % node_size_ == 0) {
      const int i = g.ep.rank();
      g.intra_node = g.ep.split(i / node_size_, i);
      g.inter_node = g.ep.split(i % node_size_, i);
    }
    expert_.emplace(p, std::move(g));
  }
}

bool ProcessGroups::hierarchical() const {
  return std::any_of(expert_.begin(), expert_.end(), [](const auto& g) { return g.second.intra_node.has_value(); });
}

const ExpertGroups* ProcessGroups::groups_for(int experts) const {
  auto it = expert_.find(size_for(experts));
  return it == expert_.end() ? nullptr : &it->second;
}

}  // namespace mt
