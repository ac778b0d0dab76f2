// TransformerBlock: pre-LayerNorm residual block, h = x + attn(ln1(x)) then h + ffn(ln2(h)), where
// the FFN is a dense GELU MLP or a MoE layer (standard or residual), as the config says.
#pragma once
#include <memory>

#include "mt/nn/attention.h"
#include "mt/nn/layer_norm.h"
#include "mt/nn/mlp.h"
#include "mt/nn/moe_layer.h"
#include "mt/nn/recompute.h"

namespace mt {

// The residual stream between blocks, x + branch, with the add left to the next LayerNorm (Note [The
// block's last add goes to the next LayerNorm] in transformer_block.cpp); branch undefined: the stream is x.
struct ResidualStream {
  Tensor x, branch;  // (B, T, d) each
};

class TransformerBlock : public Module {
 public:
  // moe: the block's MoE config, or null for a dense MLP block; expert_groups: the groups its experts
  // are split over (null: every expert here).
  TransformerBlock(int64_t d_model, int64_t heads, double dropout, const MoEConfig* moe, Generator& dropout_gen,
                   const ExpertGroups* expert_groups = nullptr);
  ResidualStream forward(const ResidualStream& in);          // (B, T, d) -> (B, T, d)
  // What the forward keeps for the backward (Note [Recomputation] in transformer_block.cpp).
  void set_recompute(Recompute mode) { recompute_ = mode; }
  Tensor forward_cached(const Tensor& x, KVCache& cache);    // incremental decoding
  MoELayer* moe() const { return moe_.get(); }

 private:
  Tensor ffn(const Tensor& h);
  Tensor attention_half(const Tensor& x);    // attn(ln1(x))
  Tensor recomputed_block(const Tensor& x);  // forward under Recompute::kBlock

  Generator& dropout_gen_;
  std::shared_ptr<LayerNorm> ln1_, ln2_;
  std::shared_ptr<CausalSelfAttention> attn_;
  std::shared_ptr<MLP> mlp_;
  std::shared_ptr<MoELayer> moe_;
  Recompute recompute_ = Recompute::kNone;
  Tensor saved_aux_, saved_z_;  // kBlock: the MoE losses the layer holds outside a re-run
};

}  // namespace mt
