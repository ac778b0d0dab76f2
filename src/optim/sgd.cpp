// SGD with momentum: calls the device's fused kernel with the group's weight decay.
#include "mt/optim/sgd.h"

namespace mt {

Sgd::Sgd(std::vector<ParamGroup> groups, const SgdConfig& config)
    : Optimizer(std::move(groups), config.lr, {"momentum_buffer"}), config_(config) {
  MT_CHECK(config.momentum >= 0 && config.momentum < 1, "SGD: momentum must be in [0, 1), got ", config.momentum);
  MT_CHECK(config.weight_decay >= 0, "SGD: weight_decay must be >= 0, got ", config.weight_decay);
  set_lr(config.lr);
}

void Sgd::update(std::vector<OptimTensors>& tensors, WeightDecay decay, Device device, float grad_scale,
                 const double* control) {
  float wd = static_cast<float>(decay == WeightDecay::kApply ? config_.weight_decay : 0.0);
  kernels().sgd.get(device, "sgd")(tensors,
                                  {static_cast<float>(lr()), static_cast<float>(config_.momentum), wd, grad_scale, control});
}

}  // namespace mt
