// The backward engine: dependency counting over the reachable graph, then a ready queue ordered
// by sequence number (latest op first) so the order is deterministic. Gradients arriving at a
// node are summed in its input buffer before it runs. No recursion, so deep graphs are safe.
#include "mt/autograd/engine.h"

#include <queue>
#include <unordered_map>

#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

struct ByLatest {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

void accumulate(std::vector<Tensor>& buffer, uint32_t slot, const Tensor& g) {
  if (!g.defined()) return;
  if (buffer.size() <= slot) buffer.resize(slot + 1);
  Tensor& sum = buffer[slot];
  if (!sum.defined()) {
    sum = g;
  } else if (sum.dtype() == g.dtype()) {
    sum = add(sum, g);
  } else {
    // A parameter used twice (the tied embedding) may get an f32 gradient from a GEMM (Note [f32 weight
    // gradients] in src/ops/linalg.cpp) and a half one from another op: summed in the wider dtype, in
    // place when the buffer holds the wider one alone (the head's gradient, which arrives first).
    if (dtype_size(g.dtype()) > dtype_size(sum.dtype())) {
      sum = add(cast(sum, g.dtype()), g);
    } else if (is_sole_owner(sum)) {
      add_(sum, g);  // widened to sum's dtype by add_
    } else {
      sum = add(sum, cast(g, sum.dtype()));
    }
  }
}

using Buffers = std::unordered_map<Node*, std::vector<Tensor>>;

// Note [Gradients added in place]: a tensor used twice gets two gradients, which the engine adds
// (accumulate above). When the second comes from a node that would build it from zeros, that is a waste:
// GPT-2's tied embedding gets the LM head's f32 (50304, 768) gradient first, then the embedding's, which
// was scattered into a zeroed (50304, 768) tensor and then added to the first: a fill and two more passes
// over 154 MB, where the scatter alone touches 16K rows. So a one-input node may add its gradient into the
// one already waiting (Node::accumulate_into), when nothing else holds that buffer and the node can (the
// embedding's index_select: same shape, a floating dtype at least as wide, contiguous).
bool accumulated_in_place(Node& n, const std::vector<Tensor>& grads, Buffers& buffers) {
  if (n.next_edges.size() != 1 || !n.next_edges[0].valid()) return false;
  auto it = buffers.find(n.next_edges[0].fn.get());
  const uint32_t slot = n.next_edges[0].input_nr;
  if (it == buffers.end() || it->second.size() <= slot) return false;
  const Tensor& sum = it->second[slot];
  return sum.defined() && is_sole_owner(sum) && n.accumulate_into(grads, sum);
}

}  // namespace

void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, RetainGraph retain) {
  MT_CHECK(roots.size() == grads.size(), "backward: ", roots.size(), " roots but ", grads.size(), " gradients");
  NoGradGuard no_grad;
  ReleasingBackwardScope releasing(retain == RetainGraph::kNo);  // Note [Gradients over saved memory]
  Buffers buffers;
  std::unordered_map<Node*, int> dependencies;
  std::vector<std::shared_ptr<Node>> root_nodes;

  for (size_t i = 0; i < roots.size(); ++i) {
    const Tensor& r = roots[i];
    Edge e = gradient_edge(r);
    MT_CHECK(e.valid(), "backward: tensor ", r.describe(), " does not require grad and has no grad_fn");
    Tensor g = grads[i];
    if (!g.defined()) {
      MT_CHECK(r.numel() == 1, "backward: a gradient must be given for non-scalar output ", r.describe());
      g = ones(r.shape(), {r.dtype(), r.device()});
    }
    check_same_shape("backward", r, g);
    accumulate(buffers[e.fn.get()], e.input_nr, g);
    root_nodes.push_back(e.fn);
  }

  // Count, for every reachable node, how many edges point at it.
  std::vector<Node*> stack;
  std::unordered_map<Node*, bool> seen;
  for (auto& n : root_nodes) {
    if (!seen[n.get()]) {
      seen[n.get()] = true;
      stack.push_back(n.get());
    }
  }
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (const Edge& e : n->next_edges) {
      if (!e.valid()) continue;
      dependencies[e.fn.get()] += 1;
      if (!seen[e.fn.get()]) {
        seen[e.fn.get()] = true;
        stack.push_back(e.fn.get());
      }
    }
  }

  std::priority_queue<Node*, std::vector<Node*>, ByLatest> ready;
  std::unordered_map<Node*, bool> pushed;  // two roots may share a node: run it once
  for (auto& n : root_nodes)
    if (dependencies[n.get()] == 0 && !pushed[n.get()]) {
      pushed[n.get()] = true;
      ready.push(n.get());
    }

  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    std::vector<Tensor> in = std::move(buffers[n]);
    buffers.erase(n);
    in.resize(n->num_outputs);
    std::vector<Tensor> out;
    if (!accumulated_in_place(*n, in, buffers)) out = n->apply(std::move(in));
    if (retain == RetainGraph::kNo) n->release();
    MT_ASSERT(out.size() == n->next_edges.size() || out.empty());
    for (size_t i = 0; i < n->next_edges.size(); ++i) {
      const Edge& e = n->next_edges[i];
      if (!e.valid()) continue;
      if (i < out.size()) accumulate(buffers[e.fn.get()], e.input_nr, out[i]);
      if (--dependencies[e.fn.get()] == 0) ready.push(e.fn.get());
    }
  }
}

}  // namespace mt
