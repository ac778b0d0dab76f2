// Experts: the FFNs of all experts of one MoE layer, stored stacked by global expert id
// (w1 (E, d, h), b1 (E, 1, h), w2 (E, h, d), b2 (E, 1, d)) and run as one batched matmul per
// weight over the expert-major buffer, never a loop of small GEMMs.
#pragma once
#include "mt/nn/module.h"

namespace mt {

class Experts : public Module {
 public:
  // Weights ~ N(0, std), biases zero.
  Experts(int64_t experts, int64_t d_model, int64_t hidden, Generator& gen, double std = 0.02);

  // buffer (E, C, d) -> (E, C, d): gelu(buffer @ w1 + b1) @ w2 + b2, expert by expert.
  Tensor forward(const Tensor& buffer) const;

  void reset_parameters(double std, Generator& gen) override;

  int64_t experts() const { return w1_.size(0); }
  const Tensor& w1() const { return w1_; }
  const Tensor& b1() const { return b1_; }
  const Tensor& w2() const { return w2_; }
  const Tensor& b2() const { return b2_; }

 private:
  Tensor w1_, b1_, w2_, b2_;
};

}  // namespace mt
