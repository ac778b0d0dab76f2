// Autograd graph: a Node computes input gradients from output gradients and points, by Edges,
// at the nodes of its inputs. Differentiable ops build a FunctionNode from a backward closure.
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
  virtual void release() {}
  const std::string& name() const { return name_; }
  uint64_t sequence_nr() const { return sequence_nr_; }
  std::vector<Edge> next_edges;
  uint32_t num_outputs = 1;

 private:
  std::string name_;
  uint64_t sequence_nr_;
};

// The gradient sink of a leaf tensor: adds into tensor.grad().
class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const Tensor& leaf);
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

using BackwardFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& grads)>;

class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(std::vector<Tensor>&& grads) override;
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
};

// A tensor saved for backward, with the version it had; get() refuses if it changed since.
class SavedTensor {
 public:
  SavedTensor() = default;
  SavedTensor(const Tensor& t, const char* what);
  const Tensor& get() const;
  bool defined() const { return tensor_.defined(); }

 private:
  Tensor tensor_;
  uint32_t version_ = 0;
  const char* what_ = "";
};

// Edge to the gradient of `t` (its grad_fn output, or its leaf accumulator); invalid if no grad needed.
Edge gradient_edge(const Tensor& t);

// Records `outputs` as produced by a node with backward `fn` over `inputs`, if grad mode is on
// and any input requires grad. Returns true if recorded.
bool record_function(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                     BackwardFn fn);

}  // namespace mt
