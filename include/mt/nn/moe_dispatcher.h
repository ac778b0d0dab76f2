// TokenDispatcher: the MoE layer's seam between the router and the experts. dispatch = the local
// permute into an expert-major buffer (mt/nn/moe_dispatch.h), then, under expert parallelism, the
// all-to-all to the experts' ranks; combine = the mirror image (all-to-all back, weighted unpermute).
// LocalDispatcher: every expert on this rank. AllToAllDispatcher: experts split over a group;
// HierarchicalAllToAllDispatcher: the same, its exchange in two phases when the group spans nodes.
#pragma once
#include <memory>

#include "mt/dist/process_groups.h"
#include "mt/nn/moe_routing.h"

namespace mt {

class TokenDispatcher {
 public:
  virtual ~TokenDispatcher() = default;
  // tokens (S, d) -> the input of this rank's E_local experts, (E_local, C', d): the rows routed to
  // them (C' = C locally; P * C, by source rank, over P ranks), or (N, d) for a packed table (locally).
  virtual Tensor dispatch(const Tensor& tokens, const RoutingTable& table) const = 0;
  // The experts' output (E_local, C', d) -> (S, d) at the tokens' rank, weighted by the gates.
  virtual Tensor combine(const Tensor& expert_out, const RoutingTable& table) const = 0;
};

class LocalDispatcher : public TokenDispatcher {
 public:
  Tensor dispatch(const Tensor& tokens, const RoutingTable& table) const override;
  Tensor combine(const Tensor& expert_out, const RoutingTable& table) const override;
};

// The E experts split over `group` (P ranks, E / P each, by rank): the (E, C, d) buffer is (P, E/P,
// C, d) by destination rank; what arrives, (P, E/P, C, d) by source rank, is regrouped by expert.
class AllToAllDispatcher : public TokenDispatcher {
 public:
  explicit AllToAllDispatcher(const Communicator& group) : group_(group) {}
  Tensor dispatch(const Tensor& tokens, const RoutingTable& table) const override;
  Tensor combine(const Tensor& expert_out, const RoutingTable& table) const override;

 protected:
  // The exchange itself: x (P * n, ...) -> (P * n, ...), chunk j to rank j (mt/dist/expert_parallel.h).
  virtual Tensor exchange(const Tensor& x) const;

 private:
  Communicator group_;
};

// The same exchange in two phases, within then across nodes (Note [Hierarchical all-to-all] in
// mt/dist/expert_parallel.h): equal results, larger inter-node messages.
class HierarchicalAllToAllDispatcher : public AllToAllDispatcher {
 public:
  // groups: an ep group with its intra_node and inter_node groups.
  explicit HierarchicalAllToAllDispatcher(const ExpertGroups& groups);

 protected:
  Tensor exchange(const Tensor& x) const override;

 private:
  Communicator intra_node_, inter_node_;
};

// Local when `groups` is null or its ep group has one rank; hierarchical when the ep group spans nodes
// (it has node groups); else flat all-to-all over the ep group.
std::unique_ptr<TokenDispatcher> make_dispatcher(const ExpertGroups* groups);

}  // namespace mt
