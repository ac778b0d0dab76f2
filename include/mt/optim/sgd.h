// SGD with momentum, PyTorch's semantics without dampening or Nesterov: d = g + wd*p,
// buf = momentum*buf + d, p -= lr*buf. State slot: "momentum_buffer" (f32).
#pragma once
#include "mt/optim/optimizer.h"

namespace mt {

struct SgdConfig {
  double lr = 1e-2;
  double momentum = 0.0;
  double weight_decay = 0.0;  // applied to groups with WeightDecay::kApply
};

class Sgd final : public Optimizer {
 public:
  Sgd(std::vector<ParamGroup> groups, const SgdConfig& config);
  const SgdConfig& config() const { return config_; }

 private:
  void update(std::vector<OptimTensors>& tensors, WeightDecay decay, Device device, float grad_scale,
              const double* control) override;
  SgdConfig config_;
};

}  // namespace mt
