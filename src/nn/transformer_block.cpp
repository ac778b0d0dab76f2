// TransformerBlock: the pre-LN residual structure shared by dense and MoE blocks, and its recomputation.
// Each residual add runs inside the LayerNorm after it (Note [Residual add fused with LayerNorm]).
#include "mt/nn/transformer_block.h"

#include <tuple>

#include "mt/autograd/checkpoint.h"
#include "mt/ops/ops.h"

namespace mt {

TransformerBlock::TransformerBlock(int64_t d_model, int64_t heads, double dropout, const MoEConfig* moe,
                                   Generator& dropout_gen, const ExpertGroups* expert_groups)
    : dropout_gen_(dropout_gen) {
  ln1_ = register_module("ln1", std::make_shared<LayerNorm>(d_model));
  attn_ = register_module("attn", std::make_shared<CausalSelfAttention>(d_model, heads, dropout, dropout_gen));
  ln2_ = register_module("ln2", std::make_shared<LayerNorm>(d_model));
  if (moe) {
    moe_ = register_module("moe", std::make_shared<MoELayer>(*moe, dropout_gen, expert_groups));
  } else {
    mlp_ = register_module("mlp", std::make_shared<MLP>(d_model, 4 * d_model, dropout, dropout_gen));
  }
}

Tensor TransformerBlock::ffn(const Tensor& h) { return moe_ ? moe_->forward(h, dropout_gen_) : mlp_->forward(h); }

// Note [Recomputation]: with train.recompute, a part of the block keeps only its input in the forward
// (mt/autograd/checkpoint.h) and runs again in the backward, with the dropout / gate-noise stream
// rewound so that the re-run draws what the forward drew: the same values, hence the same gradients.
// kAttention recomputes ln1 -> qkv -> attention -> proj -> dropout; kBlock the whole block, keeping only
// x (B, T, d) per layer (one block's activations live at a time in the backward). A MoE layer's aux and
// z losses are outputs of the recomputed part, so their gradients reach the gate through the re-run.
// Under expert parallelism the re-run repeats the all-to-alls; every rank recomputes the same blocks in
// the same order, so they still meet.
Tensor TransformerBlock::attention_half(const Tensor& x) { return attn_->forward(ln1_->forward(x)); }

// Note [The block's last add goes to the next LayerNorm]
// A block ends with x' = h + ffn(.), and the next block (or the final LayerNorm) begins with ln(x'). The
// add is left to that LayerNorm's fused add_layer_norm (Note [Residual add fused with LayerNorm]): the
// block returns (h, ffn(.)) as a ResidualStream, and the next one takes x' and ln1(x') from one kernel
// each way, so every block runs one add pass fewer forward and one gradient sum fewer backward. Under
// recomputation the stream is added up first, so a checkpoint keeps one tensor, as before.
ResidualStream TransformerBlock::forward(const ResidualStream& in) {
  if (recompute_ != Recompute::kNone) {
    Tensor x = in.branch.defined() ? add(in.x, in.branch) : in.x;
    if (recompute_ == Recompute::kBlock) return {recomputed_block(x), Tensor()};
    Tensor a =
        checkpoint([this](const std::vector<Tensor>& v) { return std::vector<Tensor>{attention_half(v[0])}; }, {x},
                   dropout_gen_)[0];
    auto [h, y] = ln2_->forward_residual(x, a);  // h = x + a, y = ln2(h): (B, T, d) each
    return {h, ffn(y)};
  }
  Tensor x = in.x, normed;
  if (in.branch.defined()) std::tie(x, normed) = ln1_->forward_residual(in.x, in.branch);  // x = in.x + branch
  else normed = ln1_->forward(x);
  auto [h, y] = ln2_->forward_residual(x, attn_->forward(normed));
  return {h, ffn(y)};
}

Tensor TransformerBlock::recomputed_block(const Tensor& x) {
  auto body = [this](const std::vector<Tensor>& in) {
    auto [h, normed] = ln2_->forward_residual(in[0], attention_half(in[0]));
    Tensor y = add(h, ffn(normed));  // (B, T, d)
    if (!moe_) return std::vector<Tensor>{y};
    // The layer's losses of this run leave as outputs; the layer keeps the ones it had, so that it never
    // holds a re-run's graph past the backward.
    std::vector<Tensor> out{y, moe_->aux_loss(), moe_->z_loss()};
    moe_->set_losses(saved_aux_, saved_z_);
    return out;
  };
  if (moe_) {
    saved_aux_ = moe_->aux_loss();
    saved_z_ = moe_->z_loss();
  }
  std::vector<Tensor> out = checkpoint(body, {x}, dropout_gen_);
  if (moe_) {
    moe_->set_losses(out[1], out[2]);
    saved_aux_ = out[1];  // what a re-run in the backward restores
    saved_z_ = out[2];
  }
  return out[0];
}

Tensor TransformerBlock::forward_cached(const Tensor& x, KVCache& cache) {
  auto [h, y] = ln2_->forward_residual(x, attn_->forward_cached(ln1_->forward(x), cache));
  return add(h, ffn(y));
}

}  // namespace mt
