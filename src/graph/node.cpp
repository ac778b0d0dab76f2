// Nodes, saved tensors and the recording of differentiable ops into the graph. Calls no op:
// AccumulateGrad::apply is defined in src/autograd/accumulate_grad.cpp (Note [Layer order]).
#include "mt/graph/node.h"

#include <atomic>

#include "mt/graph/grad_mode.h"

namespace mt {

namespace {
std::atomic<uint64_t> g_next_sequence_nr{0};
thread_local bool t_backward_releases = false;
}

Node::Node(std::string name) : name_(std::move(name)), sequence_nr_(g_next_sequence_nr++) {}

DType grad_dtype_for(DType leaf) { return is_half(leaf) ? DType::kF32 : leaf; }

DType param_grad_dtype(const Tensor& p) { return p.is_leaf() ? grad_dtype_for(p.dtype()) : p.dtype(); }

bool is_sole_owner(const Tensor& g) {
  return g.impl_ptr().use_count() == 1 && g.storage().use_count() == 1 && g.offset() == 0 && g.is_contiguous() &&
         g.storage()->nbytes() == g.nbytes();
}

AccumulateGrad::AccumulateGrad(const Tensor& leaf) : Node("AccumulateGrad"), leaf_(leaf.impl_ptr()) {}

std::vector<Tensor> FunctionNode::apply(std::vector<Tensor>&& grads) {
  MT_CHECK(fn_ != nullptr, "backward through ", name(),
           " a second time: its saved tensors were freed; pass retain_graph=true to the first backward");
  return fn_(grads);
}

bool FunctionNode::accumulate_into(const std::vector<Tensor>& grads, const Tensor& sum) {
  return accumulate_ != nullptr && accumulate_(grads, sum);
}

// Saved detached: the values are all backward needs, and holding an output's autograd metadata
// here would make a cycle (output -> grad_fn -> saved output).
SavedTensor::SavedTensor(const Tensor& t, const char* what) : tensor_(t.defined() ? t.detach() : t), what_(what) {
  if (t.defined()) version_ = t.version();
}

bool SavedTensor::reusable() const {
  return t_backward_releases && tensor_.defined() && tensor_.version() == version_ && is_sole_owner(tensor_);
}

ReleasingBackwardScope::ReleasingBackwardScope(bool releases) : previous_(t_backward_releases) {
  t_backward_releases = releases;
}

ReleasingBackwardScope::~ReleasingBackwardScope() { t_backward_releases = previous_; }

const Tensor& SavedTensor::get() const {
  MT_CHECK(!tensor_.defined() || tensor_.version() == version_, "autograd: ", what_,
           " saved for backward was modified in place (version ", version_, " -> ", tensor_.version(),
           "); its gradient would be wrong");
  return tensor_;
}

Edge gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.impl()->autograd) return {};
  AutogradMeta& meta = *t.impl()->autograd;
  if (meta.grad_fn) return {meta.grad_fn, meta.output_nr};
  if (!meta.requires_grad) return {};
  auto acc = meta.grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(t);
    meta.grad_accumulator = acc;
  }
  return {acc, 0};
}

bool record_function(const char* name, const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs,
                     BackwardFn fn, AccumulateFn accumulate) {
  if (!grad_mode_enabled()) return false;
  bool any = false;
  for (const Tensor& t : inputs) any = any || (t.defined() && (t.requires_grad() || t.grad_fn()));
  if (!any) return false;
  MT_ASSERT(accumulate == nullptr || inputs.size() == 1);
  auto node = std::make_shared<FunctionNode>(name, std::move(fn), std::move(accumulate));
  node->num_outputs = static_cast<uint32_t>(outputs.size());
  for (const Tensor& t : inputs) node->next_edges.push_back(gradient_edge(t));
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    AutogradMeta& meta = outputs[i].autograd_meta();
    meta.grad_fn = node;
    meta.output_nr = i;
    meta.requires_grad = true;
  }
  return true;
}

}  // namespace mt
