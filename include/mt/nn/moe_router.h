// Router: the gate of an MoE layer, Linear(d, E, bias=false) evaluated in f32 whatever the
// activation dtype (f64 stays f64, for gradcheck), then the gating of moe_routing.h. Training
// mode picks the capacity factor and turns the noisy gate (Jitter or RSample) on.
#pragma once
#include "mt/nn/moe_config.h"
#include "mt/nn/moe_routing.h"
#include "mt/nn/module.h"

namespace mt {

class Router : public Module {
 public:
  // weight (E, d) ~ N(0, std).
  Router(const MoEConfig& config, Generator& gen, double std = 0.02);

  // x (S, d) -> the routing of its S tokens. `gen` feeds the noisy gate and random token selection;
  // expert_group: the layer's expert-parallel group, whose ranks agree on a dropless capacity;
  // sequence_length: T when x holds whole sequences batch-major (Note [Sequence-major routing]), else 0.
  RoutingResult forward(const Tensor& x, Generator& gen, const Communicator* expert_group = nullptr,
                        int64_t sequence_length = 0) const;

  void reset_parameters(double std, Generator& gen) override;

  const Tensor& weight() const { return weight_; }
  const MoEConfig& config() const { return config_; }

 private:
  MoEConfig config_;
  Tensor weight_;
};

}  // namespace mt
