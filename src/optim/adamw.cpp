// AdamW: fills the kernel's hyperparameters (bias corrections from the step count, weight decay
// per group) and calls the device's fused kernel.
#include "mt/optim/adamw.h"

#include <cmath>

namespace mt {

AdamW::AdamW(std::vector<ParamGroup> groups, const AdamWConfig& config)
    : Optimizer(std::move(groups), config.lr, {"exp_avg", "exp_avg_sq"}), config_(config) {
  MT_CHECK(config.beta1 >= 0 && config.beta1 < 1 && config.beta2 >= 0 && config.beta2 < 1,
           "AdamW: betas must be in [0, 1), got (", config.beta1, ", ", config.beta2, ")");
  MT_CHECK(config.eps > 0, "AdamW: eps must be > 0, got ", config.eps);
  MT_CHECK(config.weight_decay >= 0, "AdamW: weight_decay must be >= 0, got ", config.weight_decay);
  set_lr(config.lr);
}

std::pair<double, double> AdamW::bias_corrections(int64_t step) const {
  // From the f32 betas the kernel uses, so that 1 - beta and 1 - beta^t agree (at step 1,
  // exp_avg / bias_correction1 is the gradient exactly, as in PyTorch); rounded to f32 as the kernel takes them.
  const double t = static_cast<double>(step);
  const float beta1 = static_cast<float>(config_.beta1), beta2 = static_cast<float>(config_.beta2);
  return {static_cast<float>(1.0 - std::pow(static_cast<double>(beta1), t)),
          static_cast<float>(1.0 - std::pow(static_cast<double>(beta2), t))};
}

void AdamW::update(std::vector<OptimTensors>& tensors, WeightDecay decay, Device device, float grad_scale,
                   const double* control) {
  const auto [bias1, bias2] = bias_corrections(step_count());
  AdamWHyper h{static_cast<float>(lr()),
               static_cast<float>(config_.beta1),
               static_cast<float>(config_.beta2),
               static_cast<float>(config_.eps),
               static_cast<float>(decay == WeightDecay::kApply ? config_.weight_decay : 0.0),
               static_cast<float>(bias1),
               static_cast<float>(bias2),
               grad_scale,
               control};
  kernels().adamw.get(device, "adamw")(tensors, h);
}

}  // namespace mt
