// MoE ops: the fused routing kernel and the row moves between tokens (S, d) and the expert-major
// buffer (E * C, d) by a routing table. The row moves are differentiable; each backward is the other
// move (a gather, never an atomic scatter), so no op here needs a zero-filled buffer or a copy.
#pragma once
#include <cstdint>

#include "mt/core/tensor.h"

namespace mt {

// What moe_route computes (contract: Kernels::MoeRoute in mt/ops/kernel_list.h). Not differentiable.
struct MoeRouting {
  Tensor expert;  // (S, k) i64
  Tensor slot;    // (S, k) i64, -1 where dropped
  Tensor weight;  // (S, k) logits dtype: gate probability of each kept choice, renormalised when k > 1
  Tensor counts;  // (2, E) i64: choices routed to each expert, then those kept
  Tensor lse;     // (S) logits dtype: logsumexp of each row of logits
  Tensor stats;   // (2E + 2) logits dtype: mean gate per expert, first-choice fraction per expert, aux, mean lse^2
};

// Routes S tokens by their gate logits (S, E) (f32, or f64): top_k choices, at most `capacity` slots
// per expert. `noise` (S, E) or undefined: Gumbel noise for the noisy choices (Note [Noisy choices]).
MoeRouting moe_route(const Tensor& logits, const Tensor& noise, int64_t top_k, int64_t capacity);

// Random token selection for top-1 choices (contract: Kernels::MoeSelect): each expert keeps its
// `capacity` tokens of highest priority (ties to the lower token), slots in token order.
struct MoeSelection {
  Tensor slot;  // (S, 1) i64, -1 where dropped
  Tensor kept;  // (E) i64
};
MoeSelection moe_select(const Tensor& expert, const Tensor& priority, int64_t capacity);

// Where the (token, choice) pairs of a routing sit in the buffer of `experts` x `capacity` rows.
struct MoeRowMap {
  Tensor expert;         // (S, k) i64
  Tensor slot;           // (S, k) i64, -1 where dropped
  Tensor buffer_choice;  // (E * C) i64: token * k + choice of each buffer row, -1 where empty
  int64_t capacity = 0;
};

// The buffer_choice of a routing: (experts * capacity) i64.
Tensor moe_buffer_map(const Tensor& expert, const Tensor& slot, int64_t experts, int64_t capacity);

// x (S, d) -> (E * C, d): each buffer row holds its token's x, empty rows are zero.
// Differentiable w.r.t. x (the backward sums each token's rows).
Tensor moe_permute(const Tensor& x, const MoeRowMap& map);

// y (E * C, d) -> (S, d): out[t] = sum over the kept choices j of weight[t, j] * y[row of (t, j)].
// weight (S, k) is f32 (f64 for f64 y). Differentiable w.r.t. y and weight.
Tensor moe_unpermute(const Tensor& y, const MoeRowMap& map, const Tensor& weight);

}  // namespace mt
