// Tensor::backward: declared in mt/core/tensor.h, defined here beside the engine it runs; see
// Note [Layer order] in tests/cli/layer_order_test.sh.
#include "mt/autograd/engine.h"
#include "mt/core/tensor.h"

namespace mt {

void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  run_backward({*this}, {grad}, retain_graph ? RetainGraph::kYes : RetainGraph::kNo);
}

}  // namespace mt
