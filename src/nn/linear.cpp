// Linear layer: registers weight (and bias) and calls the fused linear op.
#include "mt/nn/linear.h"

#include "mt/nn/init.h"
#include "mt/ops/ops.h"

namespace mt {

Linear::Linear(int64_t in_features, int64_t out_features, Bias bias, DType dtype) {
  MT_CHECK(in_features > 0 && out_features > 0, "Linear: features must be > 0, got in ", in_features, ", out ",
           out_features);
  weight_ = register_parameter("weight", zeros({out_features, in_features}, {dtype}), ParamKind::kWeight);
  if (bias == Bias::kYes) bias_ = register_parameter("bias", zeros({out_features}, {dtype}), ParamKind::kBias);
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight_, bias_); }

void Linear::reset_parameters(double std, Generator& gen) {
  init::normal_(weight_, std, gen);
  if (bias_.defined()) init::zeros_(bias_);
}

}  // namespace mt
