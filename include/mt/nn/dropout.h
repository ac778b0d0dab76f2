// Dropout: zeroes elements with probability p and scales the rest by 1/(1-p) in training mode;
// the identity in eval mode. Draws from the Generator it was given (which must outlive it).
#pragma once
#include "mt/nn/module.h"

namespace mt {

class Dropout : public Module {
 public:
  Dropout(double p, Generator& gen);
  Tensor forward(const Tensor& x) const;
  double p() const { return p_; }

 private:
  double p_;
  Generator* gen_;
};

}  // namespace mt
