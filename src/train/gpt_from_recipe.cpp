// gpt_config_from_recipe: the recipe's model and moe sections, copied into a GPTConfig (the moe
// section's layer settings once, into its MoEConfig).
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
  c.moe.top_k = r.moe.top_k;
  c.moe.mlp_type = r.moe.mlp_type;
  c.moe.capacity_factor = r.moe.capacity_factor;
  c.moe.eval_capacity_factor = r.moe.eval_capacity_factor;
  c.moe.min_capacity = r.moe.min_capacity;
  c.moe.drop_tokens = r.moe.drop_tokens;
  c.moe.noisy_gate = r.moe.noisy_gate;
  c.moe.random_token_selection = r.moe.random_token_selection;
  c.moe.second_expert_sampling = r.moe.second_expert_sampling;
  c.moe.aux_loss_coef = r.moe.aux_loss_coef;
  c.moe.z_loss_coef = r.moe.z_loss_coef;
  return c;
}

}  // namespace mt
