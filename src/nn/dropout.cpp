// Dropout layer: the dropout op with this module's training flag and generator.
#include "mt/nn/dropout.h"

#include "mt/ops/ops.h"

namespace mt {

Dropout::Dropout(double p, Generator& gen) : p_(p), gen_(&gen) {
  MT_CHECK(p >= 0 && p < 1, "Dropout: p must be in [0, 1), got ", p);
}

Tensor Dropout::forward(const Tensor& x) const {
  if (!is_training() || p_ == 0) return x;
  return dropout(x, p_, true, *gen_);
}

}  // namespace mt
