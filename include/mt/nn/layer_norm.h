// LayerNorm over the last dimension with a learned weight (starts at 1) and bias (starts at 0).
#pragma once
#include <utility>

#include "mt/nn/module.h"

namespace mt {

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5, DType dtype = DType::kF32);
  Tensor forward(const Tensor& x) const;  // (.., dim) -> (.., dim)
  // {h = x + r, forward(h)} as one op, add_layer_norm (Note [Residual add fused with LayerNorm]): a pre-LN
  // block's residual add and the norm after it. x, r (.., dim) -> two (.., dim).
  std::pair<Tensor, Tensor> forward_residual(const Tensor& x, const Tensor& r) const;
  void reset_parameters(double std, Generator& gen) override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  Tensor weight_, bias_;
  double eps_;
};

}  // namespace mt
