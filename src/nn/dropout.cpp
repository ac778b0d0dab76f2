// Dropout layer: the dropout op in training mode only, with this module's generator.
#include "mt/nn/dropout.h"

#include "mt/ops/ops.h"

namespace mt {

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  MT_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p_ == 0) return x;
  return dropout(x, p_, *gen_);
}

}  // namespace mt
