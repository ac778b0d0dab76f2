// memory_plans: enumerate the settings, estimate each, sort (memory_plan.h).
#include "mt/train/memory_plan.h"

#include <algorithm>
#include <tuple>

#include "mt/train/gpt_from_recipe.h"
#include "mt/train/memory_estimate.h"

namespace mt {

// Note [Planning memory]: a plan fits when weights, gradients, optimizer state and the activations of one
// micro-batch (Note [Activation memory]) take at most kUsableMemoryFraction of the GPU: the rest is for the
// CUDA context, cuBLAS / cuDNN workspaces and the caching allocator's slack (on the H200, dense-124m's
// measured peak was 9.3 GiB against an 8.9 GiB estimate of the tensors alone, bench/NOTES.md). Costs are
// stated, not converted to time (that depends on the network): recomputation as extra forward FLOPs, ZeRO-1
// and -2 as the bytes of the parameter broadcast, the replicated gradients' reduction as its bytes (a ring
// all-reduce sends 2 (N-1)/N of the gradient once a step; ZeRO-2's reduce-scatter (N-1)/N of it, but once
// per micro-batch: more with accumulation; the lower stage is preferred when both fit), expert parallelism as the all-to-all bytes, a smaller micro-batch
// as more accumulation steps of smaller GEMMs.

namespace {

// Forward FLOPs per token of the recomputed parts over training FLOPs per token (= 3 x forward).
double recompute_fraction(const GPTConfig& c) {
  const double d = c.d_model, t = c.seq_len;
  const double attention_half = 2 * 4 * d * d + 4 * d * t;  // qkv and proj GEMMs, causal attention
  double blocks = 0, attention = 0;
  for (int l = 0; l < c.layers; ++l) {
    double ffn = 2 * 8 * d * d;  // the 4d MLP
    if (c.is_moe_block(l)) ffn = ffn * std::min<int64_t>(c.moe.top_k, c.experts_per_block[l]) +
                                 (c.moe.mlp_type == MlpType::kResidual ? ffn : 0);
    blocks += attention_half + ffn;
    attention += attention_half;
  }
  const double train = train_flops_per_token(c);
  return c.recompute == Recompute::kNone ? 0 : (c.recompute == Recompute::kAttention ? attention : blocks) / train;
}

}  // namespace

std::string MemoryPlan::overrides() const {
  return str_cat("dist.ep=", ep, " dist.zero=", zero, " train.micro_batch=", micro_batch,
                 " train.recompute=", recompute_name(recompute));
}

std::vector<MemoryPlan> memory_plans(const Recipe& recipe, int gpus, double gpu_bytes) {
  MT_CHECK(gpus >= 1 && gpu_bytes > 0, "memory_plans: expected gpus >= 1 and a memory size, got ", gpus, ", ",
           gpu_bytes);
  GPTConfig base = gpt_config_from_recipe(recipe);
  const bool half = recipe.model.dtype != ModelSection::DType::kF32;
  const int per_rank = recipe.train.global_batch / gpus;
  MT_CHECK(recipe.train.global_batch > 0 && recipe.train.global_batch % gpus == 0, recipe.where({"train.global_batch"}),
           ": train.global_batch = ", recipe.train.global_batch, " must be a multiple of the ", gpus,
           " ranks to plan for");
  int max_experts = 0;
  for (int e : base.experts_per_block) max_experts = std::max(max_experts, e);
  const double s = half ? 2 : 4;
  std::vector<MemoryPlan> plans;
  for (int ep = 1; ep <= gpus; ++ep) {
    if (gpus % ep != 0 || (ep > 1 && ep > max_experts)) continue;
    bool splits = true;
    for (size_t l = 0; l < base.experts_per_block.size() && splits; ++l) {
      int e = base.experts_per_block[l];
      splits = e == 0 || (e % std::min(e, ep) == 0 && gpus % std::min(e, ep) == 0);
    }
    if (!splits) continue;
    for (int zero : {0, 1, 2}) {
      if (zero >= 1 && gpus == 1) continue;
      for (int micro = 1; micro <= per_rank; ++micro) {
        if (per_rank % micro != 0) continue;
        for (Recompute rc : {Recompute::kNone, Recompute::kAttention, Recompute::kBlock}) {
          GPTConfig c = base;
          c.recompute = rc;
          MemoryPerRank m = memory_per_rank(c, half, gpus, ep, zero);
          MemoryPlan p;
          p.ep = ep;
          p.zero = zero;
          p.micro_batch = micro;
          p.grad_accum = per_rank / micro;
          p.recompute = rc;
          p.weights_and_grads = m.weights_and_grads;
          p.optimizer_state = m.optimizer_state;
          p.activations = activation_memory(c, half, micro).peak();
          p.recompute_flops = recompute_fraction(c);
          ParamCounts pc = count_parameters(c);
          double experts = 0;
          for (int64_t e : pc.expert_params) experts += static_cast<double>(e);
          p.zero_gather_bytes = zero >= 1 ? (static_cast<double>(pc.total) - experts) * s : 0;
          const double replicated_grads = (static_cast<double>(pc.total) - experts) * 4;  // f32 gradients
          p.grad_reduce_bytes = gpus == 1 ? 0
                                : zero == 2 ? replicated_grads * (gpus - 1) / gpus * p.grad_accum
                                            : replicated_grads * 2 * (gpus - 1) / gpus;
          // Each MoE layer sends its k x cf routed rows out and back, forward and backward: 4 exchanges of
          // (tokens x k x d) a micro-batch, the (ep - 1) / ep share leaving the rank.
          int moe_layers = 0;
          for (int l = 0; l < c.layers; ++l) moe_layers += c.is_moe_block(l) ? 1 : 0;
          const double tokens = static_cast<double>(per_rank) * c.seq_len;
          const double routed_rows = tokens * c.moe.top_k * c.moe.capacity_factor;
          p.all_to_all_bytes = ep > 1 ? moe_layers * 4.0 * routed_rows * c.d_model * s * (ep - 1) / ep : 0;
          p.fits = p.total() <= kUsableMemoryFraction * gpu_bytes;
          plans.push_back(p);
        }
      }
    }
  }
  std::stable_sort(plans.begin(), plans.end(), [](const MemoryPlan& a, const MemoryPlan& b) {
    return std::make_tuple(!a.fits, a.recompute_flops, -a.micro_batch, a.zero, a.all_to_all_bytes) <
           std::make_tuple(!b.fits, b.recompute_flops, -b.micro_batch, b.zero, b.all_to_all_bytes);
  });
  return plans;
}

}  // namespace mt
