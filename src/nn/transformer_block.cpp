// TransformerBlock: the pre-LN residual structure shared by dense and MoE blocks.
#include "mt/nn/transformer_block.h"

#include "mt/ops/ops.h"

namespace mt {

TransformerBlock::TransformerBlock(int64_t d_model, int64_t heads, double dropout, const MoEConfig* moe,
                                   Generator& dropout_gen, const Communicator* expert_group)
    : dropout_gen_(dropout_gen) {
  ln1_ = register_module("ln1", std::make_shared<LayerNorm>(d_model));
  attn_ = register_module("attn", std::make_shared<CausalSelfAttention>(d_model, heads, dropout, dropout_gen));
  ln2_ = register_module("ln2", std::make_shared<LayerNorm>(d_model));
  if (moe) {
    moe_ = register_module("moe", std::make_shared<MoELayer>(*moe, dropout_gen, expert_group));
  } else {
    mlp_ = register_module("mlp", std::make_shared<MLP>(d_model, 4 * d_model, dropout, dropout_gen));
  }
}

Tensor TransformerBlock::ffn(const Tensor& h) { return moe_ ? moe_->forward(h, dropout_gen_) : mlp_->forward(h); }

Tensor TransformerBlock::forward(const Tensor& x) {
  Tensor h = add(x, attn_->forward(ln1_->forward(x)));  // (B, T, d)
  return add(h, ffn(ln2_->forward(h)));
}

Tensor TransformerBlock::forward_cached(const Tensor& x, KVCache& cache) {
  Tensor h = add(x, attn_->forward_cached(ln1_->forward(x), cache));
  return add(h, ffn(ln2_->forward(h)));
}

}  // namespace mt
