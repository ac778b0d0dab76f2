// Gating, as DeepSpeed's sharded_moe.py does it (top-1, top-2, general top-k), producing a dense
// routing table (token, choice) -> (expert, slot, weight) instead of an S x E x C one-hot tensor.
// One fused kernel (moe_route) makes the table; gradients reach the gate through public ops.
#pragma once
#include <cstdint>
#include <vector>

#include "mt/core/generator.h"
#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"
#include "mt/ops/moe_ops.h"

namespace mt {

// Where each (token, choice) goes. S tokens, k choices per token, E experts of `capacity` slots.
struct RoutingTable {
  Tensor expert;  // (S, k) i64: the expert of each choice (choice 0 is the most probable)
  Tensor slot;    // (S, k) i64: the slot in that expert's buffer, -1 if the choice was dropped
  Tensor weight;  // (S, k) gate dtype: combine weight, 0 where dropped; differentiable w.r.t. the gate
  Tensor buffer_choice;  // (buffer_rows()) i64: the choice (token * k + j) in each buffer row, -1 where empty
  int64_t experts = 0;
  int64_t capacity = 0;  // dropless: the largest count
  // Dropless routing on one rank packs the buffer (Note [Packed dropless buffer], mt/ops/ops.h's
  // experts_mlp_gelu_packed): expert e's rows follow expert e-1's, its tokens first, then zero rows up to
  // a whole block (RoutingOptions::packed_row_block). expert_rows (host) holds each expert's row count,
  // empty for the (E, capacity) layout; buffer_row (S, k) i64 each choice's row.
  std::vector<int64_t> expert_rows;
  Tensor buffer_row;

  int64_t tokens() const { return expert.size(0); }
  int64_t top_k() const { return expert.size(1); }
  bool packed() const { return !expert_rows.empty(); }
  int64_t buffer_rows() const;  // E * capacity, or the sum of expert_rows when packed
  // Packed, the map is of one expert of buffer_rows() slots, each choice's slot its buffer row.
  MoeRowMap row_map() const;
};

// Counters of one routing, for the metrics log. They stay on the routing's device until asked for,
// so a forward never waits for them; each accessor copies them to the host (empty before a routing).
struct RoutingStats {
  Tensor counts;  // (2, E) i64: per expert, the (token, choice) pairs sent to it (before dropping), then those kept
  int64_t capacity = 0;
  std::vector<int64_t> routed() const;
  std::vector<int64_t> kept() const;
  // Fraction of (token, choice) pairs dropped; 0 when nothing was routed.
  double drop_rate() const;
};

struct RoutingResult {
  RoutingTable table;
  // 0-d, before dropping: E * sum_e mean_s(gates)[e] * mean_s(first-choice mask)[e] for k <= 2;
  // E^2 / k * mean_e(mean_s(gates)[e] * mean_s(mask over all k choices)[e]) for k > 2 (topkgating).
  Tensor aux_loss;
  Tensor z_loss;    // 0-d: mean_s(logsumexp(logits)^2)
  RoutingStats stats;
};

// Explicit draws that replace the generator's, in routing (sequence-major) token order: tests feed
// a reference implementation's noise through them. Undefined members are drawn from the generator.
struct RoutingNoise {
  Tensor gumbel;   // (S, E) logits dtype: Gumbel noise of the noisy choices (Note [Noisy choices])
  Tensor uniform;  // (S, E) f32: U(0, 1) priorities of random token selection
};

struct RoutingOptions {
  int64_t top_k = 1;
  double capacity_factor = 1.0;  // the train or eval factor, chosen by the caller
  int64_t min_capacity = 4;
  bool drop_tokens = true;
  bool gumbel_noise = false;  // RSample in training: Gumbel noise on the logits of the noisy choices
  // Top-1 only (DeepSpeed's use_rts, on by default there): over capacity, keep tokens by mask x U(0, 1).
  bool random_token_selection = true;
  // Top-2 only (DeepSpeed's top2_2nd_expert_sampling, default on): the second choice is the argmax
  // of the remaining logits + Gumbel noise, in training and evaluation alike.
  bool second_expert_sampling = true;
  // Tokens are S / T sequences of T positions, batch-major; routed in sequence-major order (Note
  // [Sequence-major routing]). 0: route in the order given.
  int64_t sequence_length = 0;
  const RoutingNoise* noise = nullptr;
  // Dropless under expert parallelism: the capacity is the largest count over this group's ranks, so
  // that their buffers have one shape for the all-to-all (null: this rank's largest count).
  const Communicator* capacity_group = nullptr;
  // Dropless: each expert's rows in the packed buffer (one rank), or the group's capacity (expert
  // parallelism), rounded up to a multiple of this (Note [Packed dropless buffer]). 0: 128 on a GPU (whole
  // GEMM tiles, and few distinct GEMM shapes for cuBLASLt's plan cache), 1 on the CPU.
  int64_t packed_row_block = 0;
};

// Slots per expert when dropping: max(ceil(S / E * capacity_factor * k), min_capacity).
// See Note [Capacity is computed in f32].
int64_t expert_capacity(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor,
                        int64_t min_capacity);

// Routes S tokens by their gate logits (S, E) (f32, or f64 for gradcheck). `gen` is drawn from
// only for Gumbel noise and random token selection, unless options.noise supplies the draws. Waits
// for the device only when dropless (the capacity is the largest count).
RoutingResult route(const Tensor& logits, const RoutingOptions& options, Generator& gen);

}  // namespace mt
