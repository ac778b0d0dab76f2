// checkpoint: a forward without a graph, and a backward that replays it (checkpoint.h).
#include "mt/autograd/checkpoint.h"

#include "mt/autograd/engine.h"
#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

class GradModeOn {
 public:
  GradModeOn() : prev_(grad_mode_enabled()) { set_grad_mode(true); }
  ~GradModeOn() { set_grad_mode(prev_); }
  GradModeOn(const GradModeOn&) = delete;
  GradModeOn& operator=(const GradModeOn&) = delete;

 private:
  bool prev_;
};

}  // namespace

std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, Generator& gen) {
  if (!grad_mode_enabled()) return fn(inputs);
  GeneratorState start = gen.state();
  std::vector<Tensor> detached, outputs;
  for (const Tensor& t : inputs) detached.push_back(t.detach());
  {
    NoGradGuard no_grad;
    outputs = fn(detached);
  }
  std::vector<bool> input_needs_grad;
  for (const Tensor& t : inputs) input_needs_grad.push_back(t.requires_grad() || t.grad_fn() != nullptr);
  Generator* stream = &gen;
  record_function("CheckpointBackward", inputs, outputs,
                  [fn, detached, input_needs_grad, start, stream](const std::vector<Tensor>& grads) {
                    // Replay: the same inputs as fresh leaves, the stream rewound for the run, then put back.
                    std::vector<Tensor> leaves;
                    for (size_t i = 0; i < detached.size(); ++i) {
                      Tensor leaf = detached[i].detach();
                      if (input_needs_grad[i]) leaf.set_requires_grad(true);
                      leaves.push_back(leaf);
                    }
                    GeneratorState after = stream->state();
                    stream->set_state(start);
                    std::vector<Tensor> rerun;
                    {
                      GradModeOn on;
                      rerun = fn(leaves);
                    }
                    stream->set_state(after);
                    std::vector<Tensor> roots, root_grads;
                    for (size_t i = 0; i < rerun.size() && i < grads.size(); ++i)
                      if (grads[i].defined() && (rerun[i].requires_grad() || rerun[i].grad_fn())) {
                        roots.push_back(rerun[i]);
                        root_grads.push_back(grads[i]);
                      }
                    if (!roots.empty()) run_backward(roots, root_grads, RetainGraph::kNo);
                    // A half leaf gathers its gradient in f32 (Note [f32 main gradients]); hand it on in the
                    // input's dtype, as the ops of an unrecomputed graph would.
                    std::vector<Tensor> input_grads;
                    for (const Tensor& leaf : leaves) {
                      Tensor g = leaf.requires_grad() ? leaf.grad() : Tensor();
                      input_grads.push_back(g.defined() && g.dtype() != leaf.dtype() ? cast(g, leaf.dtype()) : g);
                    }
                    return input_grads;
                  });
  return outputs;
}

}  // namespace mt
