// AdamW with PyTorch's exact semantics: decoupled weight decay (p -= lr*wd*p) then the Adam
// update with bias corrections; f32 moments; bf16/f16 parameters update through f32 masters.
#pragma once
#include "mt/optim/optimizer.h"

namespace mt {

struct AdamWConfig {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;  // applied to groups with WeightDecay::kApply
};

class AdamW final : public Optimizer {
 public:
  AdamW(std::vector<ParamGroup> groups, const AdamWConfig& config);
  const AdamWConfig& config() const { return config_; }
  std::pair<double, double> bias_corrections(int64_t step) const override;

 private:
  void update(std::vector<OptimTensors>& tensors, WeightDecay decay, Device device, float grad_scale,
              const double* control) override;
  AdamWConfig config_;
};

}  // namespace mt
