// The local, all-to-all and hierarchical all-to-all token dispatchers: the row moves of moe_dispatch.h,
// and around the exchange the regrouping between (P, E/P, C, d) by rank and (E/P, P * C, d) by expert.
#include "mt/nn/moe_dispatcher.h"

#include "mt/dist/expert_parallel.h"
#include "mt/nn/moe_dispatch.h"

namespace mt {

Tensor LocalDispatcher::dispatch(const Tensor& tokens, const RoutingTable& table) const {
  return dispatch_tokens(tokens, table);  // (E, C, d)
}

Tensor LocalDispatcher::combine(const Tensor& expert_out, const RoutingTable& table) const {
  return combine_tokens(expert_out, table);  // (S, d)
}

Tensor AllToAllDispatcher::dispatch(const Tensor& tokens, const RoutingTable& table) const {
  const int64_t p = group_.size(), local = table.experts / p, c = table.capacity, d = tokens.size(1);
  MT_CHECK(table.experts % p == 0, "AllToAllDispatcher: ", table.experts, " experts do not split over ", p, " ranks");
  MT_CHECK(!table.packed(), "AllToAllDispatcher: a packed routing table (dropless routing without the expert "
                            "group's capacity) cannot be exchanged");
  Tensor buffer = dispatch_tokens(tokens, table);                        // (E, C, d) = (P, E/P, C, d) by destination
  Tensor received = exchange(buffer).view({p, local, c, d});             // (P, E/P, C, d) by source rank
  return received.permute({1, 0, 2, 3}).contiguous().view({local, p * c, d});  // (E/P, P*C, d)
}

Tensor AllToAllDispatcher::combine(const Tensor& expert_out, const RoutingTable& table) const {
  const int64_t p = group_.size(), local = table.experts / p, c = table.capacity, d = expert_out.size(2);
  MT_CHECK(expert_out.dim() == 3 && expert_out.size(0) == local && expert_out.size(1) == p * c,
           "AllToAllDispatcher: expected the experts' output (", local, ", ", p * c, ", d), got ",
           expert_out.describe());
  Tensor done = expert_out.view({local, p, c, d}).permute({1, 0, 2, 3}).contiguous();  // (P, E/P, C, d) by source
  Tensor back = exchange(done.view({p * local, c, d}));                   // (E, C, d), at the tokens' rank
  return combine_tokens(back, table);                                     // (S, d)
}

Tensor AllToAllDispatcher::exchange(const Tensor& x) const { return all_to_all(x, group_); }

namespace {

const ExpertGroups& spanning_nodes(const ExpertGroups& groups) {
  MT_CHECK(groups.intra_node && groups.inter_node, "HierarchicalAllToAllDispatcher: the expert group of ",
           groups.ep.size(), " ranks has no node groups (it does not span nodes)");
  return groups;
}

}  // namespace

HierarchicalAllToAllDispatcher::HierarchicalAllToAllDispatcher(const ExpertGroups& groups)
    : AllToAllDispatcher(groups.ep),
      intra_node_(*spanning_nodes(groups).intra_node),
      inter_node_(*groups.inter_node) {}

Tensor HierarchicalAllToAllDispatcher::exchange(const Tensor& x) const {
  return hierarchical_all_to_all(x, intra_node_, inter_node_);
}

std::unique_ptr<TokenDispatcher> make_dispatcher(const ExpertGroups* groups) {
  if (!groups || groups->ep.size() == 1) return std::make_unique<LocalDispatcher>();
  if (groups->intra_node) return std::make_unique<HierarchicalAllToAllDispatcher>(*groups);
  return std::make_unique<AllToAllDispatcher>(groups->ep);
}

}  // namespace mt
