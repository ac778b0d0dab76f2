// Experts: parameter setup and the batched two-layer FFN.
#include "mt/nn/moe_experts.h"

#include "mt/autograd/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

Experts::Experts(int64_t experts, int64_t d_model, int64_t hidden, Generator& gen, double std) {
  MT_CHECK(experts >= 1 && d_model >= 1 && hidden >= 1, "Experts: expected experts, d_model, hidden >= 1, got ",
           experts, ", ", d_model, ", ", hidden);
  w1_ = register_parameter("w1", zeros({experts, d_model, hidden}), ParamKind::kWeight);
  b1_ = register_parameter("b1", zeros({experts, 1, hidden}), ParamKind::kBias);
  w2_ = register_parameter("w2", zeros({experts, hidden, d_model}), ParamKind::kWeight);
  b2_ = register_parameter("b2", zeros({experts, 1, d_model}), ParamKind::kBias);
  reset_parameters(std, gen);
}

void Experts::reset_parameters(double std, Generator& gen) {
  NoGradGuard no_grad;
  normal_(w1_, 0.0, std, gen);
  normal_(w2_, 0.0, std, gen);
  fill_(b1_, 0.0);
  fill_(b2_, 0.0);
}

Tensor Experts::forward(const Tensor& buffer) const {
  MT_CHECK(buffer.dim() == 3 && buffer.size(0) == w1_.size(0) && buffer.size(2) == w1_.size(1),
           "Experts: expected a buffer (", w1_.size(0), ", C, ", w1_.size(1), "), got ", buffer.describe());
  Tensor h = gelu(bmm_bias(buffer, w1_, b1_));  // (E, C, h)
  return bmm_bias(h, w2_, b2_);                 // (E, C, d)
}

}  // namespace mt
