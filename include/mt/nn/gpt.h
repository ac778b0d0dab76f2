// GPT: token + learned position embeddings, pre-LayerNorm blocks (causal attention, then a GELU
// MLP or a MoE layer), final LayerNorm and an LM head tied to the token embedding. The vocabulary
// is padded to a multiple of 64 (padded logits are real columns that the targets never select).
#pragma once
#include <memory>
#include <vector>

#include "mt/core/generator.h"
#include "mt/nn/module.h"
#include "mt/nn/moe_config.h"
#include "mt/nn/recompute.h"

namespace mt {

class ProcessGroups;
class TransformerBlock;
struct ResidualStream;
struct KVCache;

struct GPTConfig {
  int layers = 12;
  int d_model = 768;
  int heads = 12;
  int seq_len = 1024;
  int vocab_size = 50257;  // the tokenizer's; padded_vocab() is what the embedding holds
  double dropout = 0.0;
  double init_std = 0.02;
  Recompute recompute = Recompute::kNone;  // train.recompute: what each block keeps for the backward
  // MoE: experts_per_block[l] experts in block l (0 = dense MLP); empty = all dense. `moe` holds the
  // settings every MoE layer shares (its d_model and experts are set per layer from the fields here).
  std::vector<int> experts_per_block;
  MoEConfig moe;

  int64_t padded_vocab() const { return (vocab_size + 63) / 64 * 64; }
  bool is_moe_block(int l) const { return !experts_per_block.empty() && experts_per_block[l] > 0; }
};

// Parameter counts computed from the config alone (no allocation), so `estimate` works for 13B models.
struct ParamCounts {
  int64_t total = 0;             // every parameter
  int64_t active = 0;            // used per token (top-k experts of each MoE layer)
  int64_t embedding = 0;         // token + position embeddings
  int64_t active_non_embedding = 0;
  std::vector<int64_t> expert_params;  // per block: its experts' parameters (0 in a dense block)
};
ParamCounts count_parameters(const GPTConfig& config);
// Training FLOPs per token (forward + backward), REFERENCE.md's PaLM form:
// 6 * active non-embedding params + 6 * V * d (LM head) + 12 * L * d * T (attention).
double train_flops_per_token(const GPTConfig& config);

class GPT : public Module {
 public:
  // init: parameter initialisation; dropout: the stream dropout masks draw from; groups: the run's process
  // groups, whose expert groups the MoE layers' experts are split over (null: every expert on every rank).
  GPT(const GPTConfig& config, Generator& init, Generator& dropout, const ProcessGroups* groups = nullptr);
  const GPTConfig& config() const { return config_; }

  // tokens (B, T) i64 -> logits (B, T, padded_vocab) in the parameters' dtype.
  Tensor forward(const Tensor& tokens);
  // cross_entropy(forward(tokens), targets) for targets (B, T), its logits never kept for another use
  // (linear_cross_entropy: their gradient is made in the loss's forward pass).
  Tensor lm_loss(const Tensor& tokens, const Tensor& targets);
  // Sum over MoE layers of (aux_loss_coef * aux + z_loss_coef * z) from the last forward;
  // undefined for a dense model.
  Tensor moe_loss() const;
  // Per MoE layer of the last forward: tokens per expert and the dropped fraction.
  struct MoEStats {
    std::vector<std::vector<int64_t>> tokens_per_expert;
    std::vector<double> drop_rate;
  };
  MoEStats moe_stats() const;

  // Incremental decoding: tokens (B, t) appended after the cache's positions -> logits (B, t, V).
  std::vector<KVCache> make_kv_caches() const;
  Tensor forward_cached(const Tensor& tokens, std::vector<KVCache>& caches);

 private:
  Tensor embed(const Tensor& tokens, int64_t start_pos);
  ResidualStream trunk(const Tensor& tokens);  // embeddings and blocks
  Tensor final_norm(const ResidualStream& s);   // final LayerNorm of x + branch: (B, T, d)
  Tensor head(const ResidualStream& s);         // final_norm and the tied LM head: (B, T, V)

  GPTConfig config_;
  Generator& dropout_gen_;
  std::shared_ptr<Module> wte_, wpe_, ln_f_;
  std::vector<std::shared_ptr<TransformerBlock>> blocks_;
};

}  // namespace mt
