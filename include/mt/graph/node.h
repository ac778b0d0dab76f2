// Autograd graph vocabulary (the graph layer, below ops): a Node computes input gradients from
// output gradients and points, by Edges, at the nodes of its inputs. Differentiable ops build a
// FunctionNode from a backward closure; the engine (mt/autograd/engine.h) runs the graph.
// Note [Released graphs]: when backward runs without retain_graph the closure (and its saved
// tensors) is dropped; a second backward through it is then an error, not a silent zero.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mt/core/tensor.h"

namespace mt {

class Node;

struct Edge {
  std::shared_ptr<Node> fn;  // null: that input needs no gradient
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

class Node {
 public:
  explicit Node(std::string name);
  virtual ~Node() = default;
  // grads[i] is the gradient of output i (undefined if none flowed); returns one per next edge.
  virtual std::vector<Tensor> apply(std::vector<Tensor>&& grads) = 0;
  // For a node with one input: adds that input's gradient, in place, into `sum`, the gradient that input
  // has already received (held by nobody else), and returns true; false when it cannot, and apply() runs.
  // Note [Gradients added in place] in src/autograd/engine.cpp.
  virtual bool accumulate_into(const std::vector<Tensor>& /*grads*/, const Tensor& /*sum*/) { return false; }
  virtual void release() {}
  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  std::vector<Edge> next_edges;
  uint32_t num_outputs = 1;

 private:
  std::string name_;
  uint64_t sequence_nr_;
};

// Note [f32 main gradients]: the gradient of a bf16/f16 leaf is an f32 tensor (Megatron's
// `main_grad`), so micro-batch gradients accumulate in f32: in bf16, 32 accumulated micro-batches
// would lose the small ones below half an ulp of the running sum (2^-9 relative). A weight's or
// bias's GEMM writes its micro-batch gradient in f32 directly (Note [f32 weight gradients] in
// src/ops/linalg.cpp); other ops compute it in the parameter's dtype (a tied weight's two uses are
// summed by the engine in the wider of the two); the sum across backward calls is f32. Everything after
// the backward reads that f32 gradient: clipping, the data-parallel all-reduce (in f32 or, by
// dist.grad_reduce_dtype, bf16 on the wire), the fused optimizers (AdamW/SGD take a float gradient
// for half parameters and update their f32 masters); ZeRO-1 splits only optimizer state, so each rank
// holds every main gradient. It is the grad itself, not a second buffer beside a bf16 grad, so no
// consumer can read the wrong one. Costs 2 bytes per parameter over a bf16 grad (memory_estimate.cpp).
// f32 and f64 leaves keep gradients of their own dtype.
DType grad_dtype_for(DType leaf);
// The dtype an op writes a gradient for `p` in: a leaf's grad_dtype_for (its f32 main gradient straight
// from the op's f32 sums, Note [f32 weight gradients] in src/ops/linalg.cpp), else p's own dtype.
DType param_grad_dtype(const Tensor& p);

// Whether g is the only handle on all of its memory (no other tensor, view or buffer can see it), so
// that the engine and AccumulateGrad may keep it or add into it in place instead of copying.
bool is_sole_owner(const Tensor& g);

// The gradient sink of a leaf tensor: adds into tensor.grad() (in grad_dtype_for(leaf's dtype)).
// apply() calls ops, so it is defined above them, in src/autograd/accumulate_grad.cpp.
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const Tensor& leaf);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads)>;

// The in-place form of a one-input backward (Node::accumulate_into): false when it cannot add into `sum`.
using AccumulateFn = std::function<bool(const std::vector<Tensor>& grads, const Tensor& sum)>;

class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn, AccumulateFn accumulate = nullptr)
      : Node(std::move(name)), fn_(std::move(fn)), accumulate_(std::move(accumulate)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  bool accumulate_into(const std::vector<Tensor>& grads, const Tensor& sum) override;
  void release() override {
    fn_ = nullptr;
    accumulate_ = nullptr;
  }

 private:
  BackwardFn fn_;
  AccumulateFn accumulate_;
};

// A tensor saved for backward, with the version it had; get() refuses if it changed since.
// Note [Gradients over saved memory]
// A backward closure may write its gradient over a tensor it saved when nothing can read that tensor
// again: the running backward releases the graph after this node (no retain_graph) and no other tensor,
// view or saved copy sees its memory. Cross-entropy's dlogits then reuse the logits' buffer, so the
// (N, V) logits and their gradient never coexist (1.5 GiB at GPT-2 124M, 16 x 1024 tokens). The engine
// tells which backward runs through ReleasingBackwardScope.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* what);
  const Tensor& get() const;
  bool defined() const { return tensor_.defined(); }
  // Whether the closure holding this may overwrite its memory now (Note [Gradients over saved memory]).
  bool reusable() const;

 private:
  Tensor tensor_;
  uint32_t version_ = 0;
  const char* what_ = "";
};

// Marks, for this thread, whether the backward being run releases its graph node by node.
class ReleasingBackwardScope {
 public:
  explicit ReleasingBackwardScope(bool releases);
  ~ReleasingBackwardScope();
  ReleasingBackwardScope(const ReleasingBackwardScope&) = delete;
  ReleasingBackwardScope& operator=(const ReleasingBackwardScope&) = delete;

 private:
  bool previous_;
};

// Edge to the gradient of `t` (its grad_fn output, or its leaf accumulator); invalid if no grad needed.
Edge gradient_edge(const Tensor& t);

// Records `outputs` as produced by a node with backward `fn` over `inputs` (and, for one input, its
// in-place form `accumulate`), if grad mode is on and any input requires grad. Returns true if recorded.
bool record_function(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                     BackwardFn fn, AccumulateFn accumulate = nullptr);

}  // namespace mt
