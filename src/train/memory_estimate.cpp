// Per-rank training memory under expert parallelism and ZeRO-1/2 (parameter counts from count_parameters),
// and the activations of a micro-batch by recompute mode.
#include "mt/train/memory_estimate.h"

#include <algorithm>

#include "mt/dist/process_groups.h"
#include "mt/nn/moe_routing.h"

namespace mt {

MemoryPerRank memory_per_rank(const GPTConfig& config, bool half_weights, int ranks, int ep, int zero) {
  check_expert_parallel(ep, ranks);
  ParamCounts pc = count_parameters(config);
  double experts_here = 0, experts_all = 0;
  for (size_t l = 0; l < pc.expert_params.size(); ++l) {
    if (pc.expert_params[l] == 0) continue;
    int p = expert_parallel_size(static_cast<int>(l), config.experts_per_block[l], ep, ranks);
    experts_all += static_cast<double>(pc.expert_params[l]);
    experts_here += static_cast<double>(pc.expert_params[l]) / p;
  }
  double replicated = static_cast<double>(pc.total) - experts_all;
  const double weight_bytes = half_weights ? 2 : 4;
  const double grad_bytes = 4;                          // f32 always: Note [f32 main gradients] in mt/graph/node.h
  const double state_bytes = half_weights ? 4 + 8 : 8;  // f32 master (half only) + two f32 moments
  // ZeRO-1 partitions the replicated parameters' optimizer state over the ranks, ZeRO-2 their gradients
  // too (each rank keeps its owned share after every backward, Note [Sharded gradients]; the buckets in
  // flight during the backward are not counted).
  const double replicated_state = zero >= 1 ? replicated / ranks : replicated;
  const double replicated_grads = zero == 2 ? replicated / ranks : replicated;
  MemoryPerRank m;
  m.weights_and_grads = (replicated + experts_here) * weight_bytes + (replicated_grads + experts_here) * grad_bytes;
  m.optimizer_state = (replicated_state + experts_here) * state_bytes;
  return m;
}

// Note [Activation memory]: the tensors the ops save for the backward, counted as they are in this
// code (src/ops, src/nn), in units of one (tokens x d) tensor of the compute dtype, N = sequences x T:
//   block input x 1 (kept by ln1 and the residual); attention half: ln1 output 1, packed qkv 3 (Note
//   [Packed QKV]), attention output 1; h = x + attention 1; ln2 output 1; dense FFN: pre-activation 4,
//   GELU output 4 (Note [GELU in the GEMM epilogue]) -> 16 for a dense block. A MoE FFN keeps, per buffer
//   slot (E x C of them, C = expert_capacity), the dispatched row 1, the experts' pre-activation and GELU
//   output 4 + 4 and their output 1, plus the gate's f32 logits and probabilities (N x E each); the
//   residual MoE adds a dense FFN (8). Per-row f32 statistics (layer norms, the attention logsumexp) and
//   bool dropout masks (N x d bytes after the attention and after the FFN) are counted too.
// Recompute (Note [Recomputation]): kAttention keeps x, h, the ln2 output and the FFN's (dense: 11) and
// recomputes the attention half (5) during the backward; kBlock keeps x only and recomputes the block.
// A recomputed part's backward also holds its gradients: the incoming one, the residual stream's and one
// per op boundary, 3 (tokens x d) tensors. The head keeps the final norm's input and output and the
// logits (N x padded vocab), whose gradient cross-entropy writes over them (Note [Gradients over saved
// memory] in mt/graph/node.h; a distilling student's KD loss keeps them too, so it holds both, and the
// teacher's logits, which are not counted here): for GPT-2's vocabulary the start of the backward is the
// peak unless blocks are recomputed and huge. Checked against measured peaks in
// tests/cli/estimate_memory_test.sh (CPU) and bench/NOTES.md (H200).
ActivationMemory activation_memory(const GPTConfig& c, bool half_weights, int64_t sequences) {
  const double s = half_weights ? 2 : 4;
  const double n = static_cast<double>(sequences) * c.seq_len, d = c.d_model;
  const double row = n * d * s;                                    // one (tokens x d) tensor
  const double stats = n * 4 * 2;                                  // a layer norm's f32 mean and rstd
  const double lse = static_cast<double>(sequences) * c.heads * c.seq_len * 4;
  const double mask = c.dropout > 0 ? n * d : 0;                   // one bool dropout mask
  const double attention_half = 5 * row + stats + lse + mask;      // ln1 out, qkv, attention out, stats, mask
  ActivationMemory m;
  double largest_block = 0;
  for (int l = 0; l < c.layers; ++l) {
    double ffn = 8 * row + mask;  // dense: pre-activation and GELU output, the mask
    if (c.is_moe_block(l)) {
      const int64_t experts = c.experts_per_block[l];
      const int64_t capacity = expert_capacity(static_cast<int64_t>(n), experts, c.moe.top_k,
                                               c.moe.capacity_factor, c.moe.min_capacity);
      const double slots = static_cast<double>(experts * capacity);
      ffn = slots * d * s * (1 + 4 + 4 + 1) + 2 * n * experts * 4 + mask;
      if (c.moe.mlp_type == MlpType::kResidual) ffn += 8 * row + n * 2 * s;
    }
    const double rest = 3 * row + stats + ffn;  // h, ln2 output, stats, the FFN: kept unless kBlock
    double kept = 0, recomputed = 0;
    switch (c.recompute) {
      case Recompute::kNone: kept = row + attention_half + rest; break;
      case Recompute::kAttention: kept = row + rest; recomputed = attention_half; break;
      case Recompute::kBlock: kept = row; recomputed = attention_half + rest; break;
    }
    m.kept += kept;
    largest_block = std::max(largest_block, recomputed);
  }
  if (largest_block > 0) m.recomputed = largest_block + 3 * row;
  const double logits = n * static_cast<double>(c.padded_vocab()) * s;
  m.head = 2 * row + stats + logits + n * 4;  // ln_f in and out, the logits (then their gradient), their logsumexp
  return m;
}

}  // namespace mt
