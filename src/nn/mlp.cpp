// MLP block: fc -> gelu -> proj -> dropout.
#include "mt/nn/mlp.h"

#include "mt/ops/ops.h"

namespace mt {

MLP::MLP(int64_t dim, int64_t hidden, double dropout, Generator& gen, DType dtype) {
  fc_ = register_module("fc", std::make_shared<Linear>(dim, hidden, Bias::kYes, dtype));
  proj_ = register_module("proj", std::make_shared<Linear>(hidden, dim, Bias::kYes, dtype));
  dropout_ = register_module("dropout", std::make_shared<Dropout>(dropout, gen));
}

Tensor MLP::forward(const Tensor& x) const {
  // (.., dim) -> (.., hidden) -> (.., dim), GELU in the GEMMs (Note [GELU in the GEMM epilogue])
  return dropout_->forward(mlp_gelu(x, fc_->weight(), fc_->bias(), proj_->weight(), proj_->bias()));
}

}  // namespace mt
