// Linear: y = x @ weight^T + bias, weight (out, in), bias (out) when Bias::kYes.
// Parameters start at zero; init_gpt2 (mt/nn/init.h) draws the weight from N(0, std).
#pragma once
#include "mt/nn/module.h"

namespace mt {

enum class Bias : uint8_t { kNo, kYes };

class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, Bias bias = Bias::kYes, DType dtype = DType::kF32);
  Tensor forward(const Tensor& x) const;  // (.., in) -> (.., out)
  void reset_parameters(double std, Generator& gen) override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined with Bias::kNo

 private:
  Tensor weight_, bias_;
};

}  // namespace mt
