// GPT: embeddings, blocks, final LayerNorm and the tied LM head; parameter counts and FLOPs
// from the config alone (used by `estimate` for paper-scale models).
#include "mt/nn/gpt.h"

#include "mt/dist/process_groups.h"
#include "mt/nn/embedding.h"
#include "mt/nn/init.h"
#include "mt/nn/transformer_block.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

MoEConfig moe_config(const GPTConfig& c, int experts) {
  MoEConfig m = c.moe;
  m.d_model = c.d_model;
  m.experts = experts;
  m.validate();
  return m;
}

}  // namespace

ParamCounts count_parameters(const GPTConfig& c) {
  const int64_t d = c.d_model;
  const int64_t mlp = 8 * d * d + 5 * d;  // fc (d -> 4d) + proj (4d -> d), with biases
  const int64_t attn = 4 * d * d + 4 * d;
  const int64_t norms = 4 * d;
  ParamCounts p;
  p.embedding = c.padded_vocab() * d + static_cast<int64_t>(c.seq_len) * d;
  int64_t total = 0, active = 0;
  for (int l = 0; l < c.layers; ++l) {
    int64_t block = attn + norms, block_active = attn + norms;
    if (c.is_moe_block(l)) {
      int64_t e = c.experts_per_block[l];
      int64_t gate = d * e;
      // Residual-MoE: a dense MLP and the coefficient Linear(d, 2).
      int64_t residual = c.moe.mlp_type == MlpType::kResidual ? mlp + 2 * d + 2 : 0;
      block += gate + e * mlp + residual;
      p.expert_params.push_back(e * mlp);
      block_active += gate + std::min<int64_t>(c.moe.top_k, e) * mlp + residual;
    } else {
      block += mlp;
      block_active += mlp;
      p.expert_params.push_back(0);
    }
    total += block;
    active += block_active;
  }
  total += 2 * d;  // ln_f
  active += 2 * d;
  p.total = total + p.embedding;
  p.active = active + p.embedding;
  p.active_non_embedding = active;
  return p;
}

double train_flops_per_token(const GPTConfig& c) {
  ParamCounts p = count_parameters(c);
  return 6.0 * static_cast<double>(p.active_non_embedding) + 6.0 * static_cast<double>(c.padded_vocab()) * c.d_model +
         12.0 * c.layers * c.d_model * static_cast<double>(c.seq_len);
}

GPT::GPT(const GPTConfig& config, Generator& init, Generator& dropout, const ProcessGroups* groups)
    : config_(config), dropout_gen_(dropout) {
  MT_CHECK(config.d_model % config.heads == 0, "GPT: d_model ", config.d_model, " is not divisible by heads ",
           config.heads);
  MT_CHECK(config.experts_per_block.empty() || static_cast<int>(config.experts_per_block.size()) == config.layers,
           "GPT: experts_per_block has ", config.experts_per_block.size(), " entries for ", config.layers, " layers");
  wte_ = register_module("wte", std::make_shared<Embedding>(config.padded_vocab(), config.d_model));
  wpe_ = register_module("wpe", std::make_shared<Embedding>(config.seq_len, config.d_model));
  auto blocks = register_module("blocks", std::make_shared<ModuleList>());
  for (int l = 0; l < config.layers; ++l) {
    std::unique_ptr<MoEConfig> moe;
    const ExpertGroups* expert_groups = nullptr;
    if (config.is_moe_block(l)) {
      moe = std::make_unique<MoEConfig>(moe_config(config, config.experts_per_block[l]));
      if (groups) expert_groups = groups->groups_for(config.experts_per_block[l]);
    }
    blocks_.push_back(blocks->push_back(std::make_shared<TransformerBlock>(config.d_model, config.heads, config.dropout,
                                                                           moe.get(), dropout, expert_groups)));
    blocks_.back()->set_recompute(config.recompute);
  }
  ln_f_ = register_module("ln_f", std::make_shared<LayerNorm>(config.d_model));
  init_gpt2(*this, config.init_std, init);
}

Tensor GPT::embed(const Tensor& tokens, int64_t start_pos) {
  MT_CHECK(tokens.dim() == 2, "GPT: tokens must be (B, T), got ", tokens.describe());
  int64_t t = tokens.size(1);
  MT_CHECK(start_pos + t <= config_.seq_len, "GPT: positions up to ", start_pos + t, " exceed model.seq_len ",
           config_.seq_len);
  auto& wte = static_cast<Embedding&>(*wte_);
  auto& wpe = static_cast<Embedding&>(*wpe_);
  Tensor pos = arange(static_cast<double>(start_pos), static_cast<double>(start_pos + t), 1.0,
                      {DType::kI64, tokens.device()});
  return add(wte.forward(tokens), wpe.forward(pos));  // (B, T, d) + (T, d)
}

ResidualStream GPT::trunk(const Tensor& tokens) {
  ResidualStream s{embed(tokens, 0), Tensor()};
  for (auto& b : blocks_) s = b->forward(s);
  return s;
}

Tensor GPT::final_norm(const ResidualStream& s) {
  auto& ln_f = static_cast<LayerNorm&>(*ln_f_);
  return s.branch.defined() ? ln_f.forward_residual(s.x, s.branch).second : ln_f.forward(s.x);
}

Tensor GPT::head(const ResidualStream& s) {
  return linear(final_norm(s), static_cast<Embedding&>(*wte_).weight());  // (B, T, V): tied LM head
}

Tensor GPT::forward(const Tensor& tokens) { return head(trunk(tokens)); }

Tensor GPT::lm_loss(const Tensor& tokens, const Tensor& targets) {
  Tensor h = final_norm(trunk(tokens));  // (B, T, d)
  return linear_cross_entropy(h.view({-1, h.size(-1)}), static_cast<Embedding&>(*wte_).weight(), targets.reshape({-1}));
}

Tensor GPT::moe_loss() const {
  Tensor total;
  for (auto& b : blocks_) {
    if (!b->moe()) continue;
    Tensor l = b->moe()->weighted_loss();
    total = total.defined() ? add(total, l) : l;
  }
  return total;
}

GPT::MoEStats GPT::moe_stats() const {
  MoEStats s;
  for (auto& b : blocks_) {
    if (!b->moe()) continue;
    s.tokens_per_expert.push_back(b->moe()->stats().kept());
    s.drop_rate.push_back(b->moe()->stats().drop_rate());
  }
  return s;
}

std::vector<KVCache> GPT::make_kv_caches() const { return std::vector<KVCache>(blocks_.size()); }

Tensor GPT::forward_cached(const Tensor& tokens, std::vector<KVCache>& caches) {
  MT_CHECK(caches.size() == blocks_.size(), "GPT: ", caches.size(), " KV caches for ", blocks_.size(), " blocks");
  Tensor x = embed(tokens, caches.front().length());
  for (size_t i = 0; i < blocks_.size(); ++i) x = blocks_[i]->forward_cached(x, caches[i]);
  return head({x, Tensor()});
}

}  // namespace mt
