// AccumulateGrad::apply: adds a leaf's incoming gradient into tensor.grad(). Declared with the
// graph vocabulary (mt/graph/node.h) but defined here, above ops, because it casts and adds;
// see Note [Layer order] in tests/cli/layer_order_test.sh.
#include "mt/graph/node.h"
#include "mt/ops/ops.h"

namespace mt {

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>&& grads) {
  auto impl = leaf_.lock();
  if (!impl || !grads[0].defined()) return {};
  Tensor leaf(impl);
  Tensor g = std::move(grads[0]);
  MT_ASSERT(g.shape() == leaf.shape());
  Tensor prev = leaf.grad();
  if (!prev.defined()) {
    // In f32 for a half leaf, see Note [f32 main gradients] in node.h. A gradient that already has that
    // dtype and is nobody else's (the f32 output of a weight-gradient GEMM, Note [f32 weight gradients]
    // in src/ops/linalg.cpp) becomes the leaf's as it is; any other is copied (cast always copies), since
    // it may alias another node's buffer.
    const DType want = grad_dtype_for(leaf.dtype());
    leaf.set_grad(g.dtype() == want && is_sole_owner(g) ? g : cast(g, want));
  } else {
    add_(prev, g);  // widened to prev's dtype by add_
  }
  // Outside the graph's vocabulary: whoever waits for this gradient (overlapped communication,
  // mt/dist/gradient_reducer.h) hears of it now, not after the whole backward.
  if (const auto& hook = leaf.autograd_meta().grad_ready_hook) hook();
  return {};
}

}  // namespace mt
