// gpt_config_from_recipe: the recipe's model and moe sections, copied into a GPTConfig.
#include "mt/train/gpt_from_recipe.h"

namespace mt {

GPTConfig gpt_config_from_recipe(const Recipe& r) {
  GPTConfig c;
  c.layers = r.model.layers;
  c.d_model = r.model.d_model;
  c.heads = r.model.heads;
  c.seq_len = r.model.seq_len;
  c.vocab_size = r.model.vocab_size;
  c.dropout = r.model.dropout;
  c.init_std = r.model.init_std;
  c.recompute = r.train.recompute;
  MT_CHECK(r.model.tie_embeddings, "model.tie_embeddings: only tied embeddings are implemented (the GPT-2 design)");
  if (!r.moe.dense()) {
    c.experts_per_block.assign(c.layers, 0);
    int moe_index = 0;
    for (int l = 1; l <= c.layers; ++l)
      if (r.moe.is_moe_block(l)) c.experts_per_block[l - 1] = r.moe.experts_at(moe_index++);
  }
  c.top_k = r.moe.top_k;
  c.residual_moe = r.moe.mlp_type == MoeSection::MlpType::kResidual;
  c.capacity_factor = r.moe.capacity_factor;
  c.eval_capacity_factor = r.moe.eval_capacity_factor;
  c.min_capacity = r.moe.min_capacity;
  c.drop_tokens = r.moe.drop_tokens;
  switch (r.moe.noisy_gate) {
    case MoeSection::NoisyGate::kNone: c.noisy_gate = NoisyGate::kNone; break;
    case MoeSection::NoisyGate::kJitter: c.noisy_gate = NoisyGate::kJitter; break;
    case MoeSection::NoisyGate::kRSample: c.noisy_gate = NoisyGate::kRSample; break;
  }
  c.random_token_selection = r.moe.random_token_selection;
  c.second_expert_sampling = r.moe.second_expert_sampling;
  c.aux_loss_coef = r.moe.aux_loss_coef;
  c.z_loss_coef = r.moe.z_loss_coef;
  return c;
}

}  // namespace mt
