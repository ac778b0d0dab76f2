// MoEConfig: the settings of one Mixture-of-Experts layer (the recipe's moe section resolved
// for one layer: Pyramid-MoE gives each layer its own expert count). Defaults follow DeepSpeed.
#pragma once
#include <cstdint>

namespace mt {

enum class NoisyGate { kNone, kJitter, kRSample };
enum class MlpType { kStandard, kResidual };

struct MoEConfig {
  int64_t d_model = 0;
  int64_t hidden = 0;  // expert (and residual MLP) hidden width; 0 = 4 * d_model
  int64_t experts = 8;
  int64_t top_k = 1;
  double capacity_factor = 1.0;       // training
  double eval_capacity_factor = 1.0;  // eval mode
  int64_t min_capacity = 4;
  bool drop_tokens = true;  // false = dropless: capacity = the largest expert count
  NoisyGate noisy_gate = NoisyGate::kNone;  // applied in training only
  bool random_token_selection = true;       // top-1 over capacity: keep random tokens, not the earliest
  bool second_expert_sampling = true;       // top-2: second choice sampled with Gumbel noise, train and eval
  double aux_loss_coef = 0.01;
  double z_loss_coef = 0.0;
  MlpType mlp_type = MlpType::kStandard;

  int64_t hidden_size() const { return hidden > 0 ? hidden : 4 * d_model; }
  // Throws mt::Error naming the first bad field ("moe.top_k = 3 exceeds moe.experts = 2").
  void validate() const;
};

}  // namespace mt
