// The exchange of expert parallelism: tokens travel to their expert's rank and back by a differentiable
// all-to-all over the layer's expert-parallel group (the groups: mt/dist/process_groups.h), flat or in
// two phases, within then across nodes.
#pragma once
#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"

namespace mt {

// Differentiable all-to-all over `group` (P ranks): x (P * n, ...) -> (P * n, ...), chunk j of the
// leading dim goes to rank j and chunk i of the result came from rank i. Its backward is the same
// exchange applied to the gradient. Every rank of the group must call it with the same shape.
Tensor all_to_all(const Tensor& x, const Communicator& group);

// Note [Hierarchical all-to-all]: DeepSpeed-MoE's two-phase exchange, for an expert-parallel group of
// P ranks that spans M = P / N nodes of N ranks (group rank i is local rank i % N of node i / N). The
// flat all-to-all sends P - 1 messages of one chunk each from every rank, most of them across nodes.
// Here phase 1 runs within the node: local rank j gathers from its node's ranks the chunks bound for
// local rank j of every node. Phase 2 runs across nodes, among the M ranks of one local index: one
// message per node, holding N chunks, so each inter-node message is N times larger and there are
// M - 1 of them instead of P - N. It only moves bytes: the result equals all_to_all's bit for bit,
// and so does its gradient (each phase's backward is that phase again, in reverse order).
// x (P * n, ...) -> (P * n, ...) as all_to_all(x, group) over the group that `intra_node` (this node's
// N ranks of it) and `inter_node` (its M ranks with this local index) divide.
Tensor hierarchical_all_to_all(const Tensor& x, const Communicator& intra_node, const Communicator& inter_node);

}  // namespace mt
