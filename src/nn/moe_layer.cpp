// MoELayer: wiring of router, dispatcher, experts and combine, and the residual mix.
#include "mt/nn/moe_layer.h"

#include "mt/ops/op_profiler.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

constexpr double kInitStd = 0.02;  // GPT-2's; a model may re-initialise with init_gpt2

}  // namespace

MoELayer::MoELayer(const MoEConfig& config, Generator& gen, const ExpertGroups* groups) : config_(config) {
  config_.validate();
  if (groups && groups->ep.size() > 1) groups_ = *groups;
  dispatcher_ = make_dispatcher(groups_ ? &*groups_ : nullptr);
  int shard = groups_ ? groups_->ep.rank() : 0, shards = groups_ ? groups_->ep.size() : 1;
  gate_ = register_module("gate", std::make_shared<Router>(config_, gen, kInitStd));
  experts_ = register_module("experts", std::make_shared<Experts>(config_.experts, config_.d_model,
                                                                   config_.hidden_size(), gen, kInitStd, shard, shards));
  if (config_.mlp_type == MlpType::kResidual) {
    mlp_ = register_module("mlp", std::make_shared<MLP>(config_.d_model, config_.hidden_size(), /*dropout=*/0.0, gen));
    coefficient_ = register_module("coefficient", std::make_shared<Linear>(config_.d_model, 2));
    mlp_->fc().reset_parameters(kInitStd, gen);
    mlp_->proj().reset_parameters(kInitStd, gen);
    coefficient_->reset_parameters(kInitStd, gen);
  }
}

Tensor MoELayer::forward(const Tensor& x, Generator& gen) {
  MT_CHECK(x.dim() >= 2 && x.size(-1) == config_.d_model, "MoELayer: expected x (..., ", config_.d_model, "), got ",
           x.describe());
  Tensor tokens = x.reshape({-1, config_.d_model});  // (S, d)
  RoutingResult routing = [&] {
    OpProfiler::Scope router(OpCategory::kMoeRouter);  // the gate's GEMM and the loss statistics too
    // x (B, T, d): whole sequences, routed sequence-major (Note [Sequence-major routing]).
    return gate_->forward(tokens, gen, expert_group(), x.dim() >= 3 ? x.size(-2) : 0);
  }();
  Tensor expert_in = dispatcher_->dispatch(tokens, routing.table);              // (E_local, C', d) or (N, d)
  Tensor expert_out = experts_->forward(expert_in, routing.table.expert_rows);  // its shape
  Tensor out = dispatcher_->combine(expert_out, routing.table);                 // (S, d)
  if (mlp_) {
    // Residual-MoE, as DeepSpeed's MoE layer: a per-token learned mix of the experts and the dense MLP.
    Tensor mix = softmax(coefficient_->forward(tokens), -1);  // (S, 2)
    out = add(mul(out, mix.narrow(1, 0, 1)), mul(mlp_->forward(tokens), mix.narrow(1, 1, 1)));
  }
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
