// Router: f32 gate logits (from the half input directly, or from f32 copies under jitter) handed to route().
#include "mt/nn/moe_router.h"

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

constexpr double kJitterEps = 1e-2;  // DeepSpeed's multiplicative_jitter: x *= U(1 - eps, 1 + eps)

}  // namespace

Router::Router(const MoEConfig& config, Generator& gen, double std) : config_(config) {
  config_.validate();
  weight_ = register_parameter("weight", zeros({config_.experts, config_.d_model}), ParamKind::kWeight);
  reset_parameters(std, gen);
}

void Router::reset_parameters(double std, Generator& gen) {
  NoGradGuard no_grad;
  normal_(weight_, 0.0, std, gen);
}

RoutingResult Router::forward(const Tensor& x, Generator& gen, const Communicator* expert_group,
                              int64_t sequence_length) const {
  MT_CHECK(x.dim() == 2 && x.size(1) == config_.d_model, "Router: expected x (tokens, ", config_.d_model, "), got ",
           x.describe());
  const bool training = is_training();
  const bool jitter = training && config_.noisy_gate == NoisyGate::kJitter;
  Tensor logits;  // (S, E) f32 (f64 for f64 x)
  if (is_half(x.dtype()) && weight_.dtype() == x.dtype() && !jitter) {
    logits = linear_f32_out(x, weight_);  // f32 products and sums of the half values, no f32 copy of x
  } else {
    DType gate_dtype = x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
    Tensor input = x.dtype() == gate_dtype ? x : cast(x, gate_dtype);
    if (jitter)
      input = mul(input, uniform(input.shape(), 1.0 - kJitterEps, 1.0 + kJitterEps, gen, {gate_dtype, input.device()}));
    logits = linear(input, weight_.dtype() == gate_dtype ? weight_ : cast(weight_, gate_dtype));
  }

  RoutingOptions o;
  o.top_k = config_.top_k;
  o.capacity_factor = training ? config_.capacity_factor : config_.eval_capacity_factor;
  o.min_capacity = config_.min_capacity;
  o.drop_tokens = config_.drop_tokens;
  o.gumbel_noise = training && config_.noisy_gate == NoisyGate::kRSample;
  o.random_token_selection = config_.random_token_selection;
  o.second_expert_sampling = config_.second_expert_sampling;
  o.sequence_length = sequence_length;
  o.capacity_group = expert_group;
  return route(logits, o, gen);
}

}  // namespace mt
