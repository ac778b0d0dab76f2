// LayerNorm layer: registers weight and bias (not weight-decayed) and calls the layer_norm op (or
// add_layer_norm, with the residual add before it).
#include "mt/nn/layer_norm.h"

#include "mt/nn/init.h"
#include "mt/ops/ops.h"

namespace mt {

LayerNorm::LayerNorm(int64_t dim, double eps, DType dtype) : eps_(eps) {
  MT_CHECK(dim > 0, "LayerNorm: dim must be > 0, got ", dim);
  MT_CHECK(eps > 0, "LayerNorm: eps must be > 0, got ", eps);
  weight_ = register_parameter("weight", ones({dim}, {dtype}), ParamKind::kNorm);
  bias_ = register_parameter("bias", zeros({dim}, {dtype}), ParamKind::kNorm);
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight_, bias_, eps_); }

std::pair<Tensor, Tensor> LayerNorm::forward_residual(const Tensor& x, const Tensor& r) const {
  return add_layer_norm(x, r, weight_, bias_, eps_);
}

void LayerNorm::reset_parameters(double, Generator&) {
  init::ones_(weight_);
  init::zeros_(bias_);
}

}  // namespace mt
