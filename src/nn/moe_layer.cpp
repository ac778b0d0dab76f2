// MoELayer: wiring of router, dispatcher and experts, and the residual mix.
#include "mt/nn/moe_layer.h"

#include "mt/nn/moe_dispatch.h"
#include "mt/ops/ops.h"

namespace mt {

MoELayer::MoELayer(const MoEConfig& config, Generator& gen) : config_(config) {
  config_.validate();
  gate_ = register_module("gate", std::make_shared<Router>(config_, gen));
  experts_ = register_module("experts", std::make_shared<Experts>(config_.experts, config_.d_model,
                                                                   config_.hidden_size(), gen));
}

Tensor MoELayer::forward(const Tensor& x, Generator& gen) {
  MT_CHECK(x.dim() >= 2 && x.size(-1) == config_.d_model, "MoELayer: expected x (..., ", config_.d_model, "), got ",
           x.describe());
  Tensor tokens = x.reshape({-1, config_.d_model});  // (S, d)
  RoutingResult routing = gate_->forward(tokens, gen);
  Tensor buffer = dispatch_tokens(tokens, routing.table);  // (E, C, d)
  Tensor out = combine_tokens(experts_->forward(buffer), routing.table);  // (S, d)
  aux_loss_ = routing.aux_loss;
  z_loss_ = routing.z_loss;
  stats_ = std::move(routing.stats);
  return out.view(x.shape());
}

Tensor MoELayer::weighted_loss() const {
  MT_CHECK(aux_loss_.defined(), "MoELayer: weighted_loss() before the first forward");
  Tensor loss = mul(aux_loss_, config_.aux_loss_coef);
  return config_.z_loss_coef > 0 ? add(loss, mul(z_loss_, config_.z_loss_coef)) : loss;
}

}  // namespace mt
