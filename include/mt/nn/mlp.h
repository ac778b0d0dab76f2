// MLP: GPT-2's feed-forward block, fc (d -> hidden), GELU (tanh form), proj (hidden -> d), dropout.
#pragma once
#include <memory>

#include "mt/nn/dropout.h"
#include "mt/nn/linear.h"

namespace mt {

class MLP : public Module {
 public:
  MLP(int64_t dim, int64_t hidden, double dropout, Generator& gen, DType dtype = DType::kF32);
  Tensor forward(const Tensor& x) const;  // (.., dim) -> (.., dim)
  Linear& fc() const { return *fc_; }
  Linear& proj() const { return *proj_; }

 private:
  std::shared_ptr<Linear> fc_, proj_;
  std::shared_ptr<Dropout> dropout_;
};

}  // namespace mt
