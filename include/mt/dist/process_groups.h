// ProcessGroups: every group of ranks a run communicates over, made once from the world and passed
// explicitly: the world (replicated gradients, loss means) and, per expert-parallel size P > 1 that a
// MoE layer uses, its ExpertGroups (DeepSpeed-MoE's layout: a layer of E experts splits them over
// P = min(E, dist.ep) consecutive ranks). dist.node_size adds the node groups of the hierarchical
// all-to-all (Note [Hierarchical all-to-all] in expert_parallel.h).
#pragma once
#include <algorithm>
#include <map>
#include <optional>
#include <vector>

#include "mt/dist/communicator.h"

namespace mt {

// Checks that dist.ep = `max_size` divides the job's `ranks`, and returns min(experts, max_size) for a
// MoE layer (block `block`) after checking that its experts split evenly over that many ranks and that
// the group size divides the ranks. Errors name dist.ep and the block.
void check_expert_parallel(int max_size, int ranks);
int expert_parallel_size(int block, int experts, int max_size, int ranks);

// Checks dist.node_size = `node_size` (>= 1 once resolved) against the job's `ranks` and an expert-parallel
// group size `ep_size`: it divides the ranks, and a group either lies within a node or spans whole nodes.
void check_node_size(int node_size, int ranks, int ep_size);

// Ranks per host (MPI_COMM_TYPE_SHARED) when every host holds the same number of consecutive ranks of
// `world` (mpirun's default placement), else 1 (no node structure to use: every all-to-all is flat).
// A collective.
int ranks_per_node(const Communicator& world);

// The groups of one expert-parallel size P: the ep groups are consecutive blocks of P ranks [0..P-1],
// [P..2P-1], ...; expert_dp joins the ranks with the same index inside their block (one expert's replicas).
// When the ep group spans nodes of N ranks (1 < N < P), intra_node holds its N ranks on this node and
// inter_node its P / N ranks with this rank's index inside the node.
struct ExpertGroups {
  Communicator ep, expert_dp;
  std::optional<Communicator> intra_node, inter_node;
};

class ProcessGroups {
 public:
  // The groups for MoE layers of the given expert counts (0 = a dense block) under `max_ep` (dist.ep)
  // and `node_size` (dist.node_size; 0 = ranks_per_node). Errors name dist.ep / dist.node_size and the
  // layer whose experts cannot be split evenly. A collective.
  ProcessGroups(const Communicator& world, int max_ep, const std::vector<int>& experts_per_block, int node_size = 0);

  const Communicator& world() const { return world_; }
  int max_ep() const { return max_ep_; }
  int node_size() const { return node_size_; }
  // min(experts, dist.ep): the expert-parallel size of a layer with `experts` experts.
  int size_for(int experts) const { return std::min(experts, max_ep_); }
  // The groups of a layer with `experts` experts; null when its experts are all local (size 1).
  const ExpertGroups* groups_for(int experts) const;
  // Whether some expert group spans nodes (its all-to-all runs in two phases).
  bool hierarchical() const;

 private:
  Communicator world_;
  int max_ep_, node_size_;
  std::map<int, ExpertGroups> expert_;  // by expert-parallel size > 1
};

}  // namespace mt
