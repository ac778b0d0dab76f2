// The gating algorithm: choices by argmax, one-hot masks (S, E) per choice, per-expert scans for
// capacity and slots, renormalised weights, aux and z losses. Only the capacity (dropless mode)
// and the host counters leave the device.
#include "mt/nn/moe_routing.h"

#include <cmath>
#include <limits>

#include "mt/autograd/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

// Note [Capacity is computed in f32]
// DeepSpeed's _capacity multiplies the Python float S / E by torch.tensor(capacity_factor * k),
// an f32 tensor, so the product is rounded to f32 before the ceil. We round the same way so a
// product such as 10 / 3 * 1.5 lands on the same integer.
int64_t expert_capacity(int64_t tokens, int64_t experts, int64_t top_k, double capacity_factor,
                        int64_t min_capacity) {
  MT_CHECK(tokens >= 0 && experts >= 1 && top_k >= 1, "expert_capacity: expected tokens >= 0, experts >= 1, top_k >= 1, got ",
           tokens, ", ", experts, ", ", top_k);
  float per_expert = static_cast<float>(static_cast<double>(tokens) / static_cast<double>(experts));
  float product = per_expert * static_cast<float>(capacity_factor * static_cast<double>(top_k));
  auto capacity = static_cast<int64_t>(std::ceil(product));
  return std::max(capacity, min_capacity);
}

double RoutingStats::drop_rate() const {
  int64_t routed_total = 0, kept_total = 0;
  for (int64_t r : routed) routed_total += r;
  for (int64_t k : kept) kept_total += k;
  return routed_total == 0 ? 0.0 : 1.0 - static_cast<double>(kept_total) / static_cast<double>(routed_total);
}

Tensor RoutingTable::buffer_rows() const {
  Tensor flat_expert = expert.reshape({-1});
  Tensor flat_slot = slot.reshape({-1});
  TensorOptions i64{DType::I64, expert.device()};
  Tensor row = add(mul(flat_expert, static_cast<double>(capacity)), flat_slot);
  return where(ge(flat_slot, zeros({}, i64)), row, full({}, static_cast<double>(experts * capacity), i64));
}

namespace {

// Gumbel(0, 1) noise: -log(-log(U)); U is drawn in f64 on [1e-20, 1) so neither log can overflow.
Tensor gumbel(const Shape& shape, DType dtype, Device device, Generator& gen) {
  Tensor u = uniform(shape, 1e-20, 1.0, gen, {DType::F64, device});
  return neg(log(neg(log(u)))).to(dtype);
}

// Keep flags (S, E) i64 of one choice level: among the tokens whose mask (S, E) i64 is set for
// expert e, keep at most room[e], by priority (random token selection) or earliest first.
Tensor keep_within_room(const Tensor& mask, const Tensor& room, int64_t capacity, bool random_selection,
                        Generator& gen) {
  Device device = mask.device();
  TensorOptions i64{DType::I64, device};
  if (!random_selection) {
    Tensor position = add(cumsum(mask, 0), -1.0);  // (S, E): order among this expert's tokens
    return mul(mask, lt(position, room).to(DType::I64));
  }
  // Priority = U(0, 1) for the expert's tokens and -1 for the others, so a chosen token never
  // ties with an unchosen one; topk breaks the remaining ties by the lower token index.
  int64_t tokens = mask.size(0), experts = mask.size(1);
  Tensor u = rand({tokens, experts}, gen, {DType::F32, device});
  Tensor priority = where(gt(mask, zeros({}, i64)), u, full({}, -1.0, {DType::F32, device}));
  int64_t n = std::min(capacity, tokens);
  Tensor best = topk(priority, n, 0).second;                             // (n, E) tokens by priority
  Tensor in_room = lt(arange(0, static_cast<double>(n), 1, i64).unsqueeze(1), room).to(DType::I64);  // (n, E)
  Tensor selected = scatter_add(zeros({tokens, experts}, i64), 0, best, in_room);
  return mul(mask, selected);
}

}  // namespace

// Note [Noisy choices]
// RSample (training only) adds one draw of Gumbel noise to the logits. Top-1 picks
// argmax(logits + G); for k >= 2 the first choice stays argmax(gates) and the later choices take
// the argmax of the remaining logits + G, as DeepSpeed's top2gating. (DeepSpeed also samples the
// second expert when RSample is off, top2_2nd_expert_sampling; we follow noisy_gate instead, so
// eval routing is deterministic.) Ties go to the lowest expert index, on every device.
//
// Note [Choice-major slots]
// Choice level j fills an expert's slots only after every kept choice of levels < j: DeepSpeed's
// top-2 rule (locations2 += sum(mask1)), extended to any k. Within a level, tokens are kept
// earliest first, or by a U(0, 1) priority under random token selection (DeepSpeed's RTS), until
// the expert is full; kept tokens take slots in token order. Weights are renormalised over the
// kept choices of each token (k >= 2), so a token whose second choice was dropped gets weight 1
// on its first; top-1 weights are the plain gate probability.
RoutingResult route(const Tensor& logits, const RoutingOptions& o, Generator& gen) {
  MT_CHECK(logits.dim() == 2, "route: expected logits (tokens, experts), got ", logits.describe());
  DType dtype = logits.dtype();
  MT_CHECK(dtype == DType::F32 || dtype == DType::F64, "route: logits must be f32 (or f64), got ", logits.describe());
  const int64_t tokens = logits.size(0), experts = logits.size(1), k = o.top_k;
  MT_CHECK(tokens >= 1, "route: no tokens to route, got ", logits.describe());
  MT_CHECK(k >= 1 && k <= experts, "route: top_k must be in [1, ", experts, "], got ", k);
  Device device = logits.device();
  TensorOptions i64{DType::I64, device};

  Tensor gates = softmax(logits, 1);  // (S, E)
  Tensor plain = logits.detach();
  Tensor noisy = o.gumbel_noise ? add(plain, gumbel(plain.shape(), dtype, device, gen)) : plain;

  // Choices: expert ids (S, 1) and one-hot masks (S, E) i64 per level.
  Tensor expert_ids = arange(0, static_cast<double>(experts), 1, i64);
  Tensor neg_inf = full({}, -std::numeric_limits<double>::infinity(), {dtype, device});
  Tensor zero_i64 = zeros({}, i64);
  std::vector<Tensor> choice(k), mask(k);
  Tensor taken = zeros({tokens, experts}, i64);
  for (int64_t j = 0; j < k; ++j) {
    Tensor score;
    if (j == 0) score = (k == 1 && o.gumbel_noise) ? noisy : gates.detach();
    else score = where(gt(taken, zero_i64), neg_inf, noisy);
    choice[j] = argmax(score, 1, /*keepdim=*/true);
    mask[j] = eq(choice[j], expert_ids).to(DType::I64);
    taken = add(taken, mask[j]);
  }
  Tensor routed = sum(taken, {0});  // (E)

  int64_t capacity;
  if (o.drop_tokens) {
    capacity = expert_capacity(tokens, experts, k, o.capacity_factor, o.min_capacity);
  } else {
    capacity = std::min(static_cast<int64_t>(max(routed, 0).item()), tokens);
  }
  MT_ASSERT(capacity >= 1);
  const bool random_selection = o.drop_tokens && o.random_token_selection;

  // Slots, level by level (Note [Choice-major slots]).
  Tensor offset = zeros({experts}, i64);  // slots already filled by earlier levels
  Tensor capacity_t = full({}, static_cast<double>(capacity), i64);
  std::vector<Tensor> slot_cols(k), kept_cols(k);
  for (int64_t j = 0; j < k; ++j) {
    Tensor keep = keep_within_room(mask[j], sub(capacity_t, offset), capacity, random_selection, gen);
    Tensor slot = add(offset, add(cumsum(keep, 0), -1.0));        // (S, E), meaningful where kept
    Tensor has_slot = sum(keep, {1}, /*keepdim=*/true);            // (S, 1): 0 or 1
    Tensor token_slot = sum(mul(slot, keep), {1}, /*keepdim=*/true);
    slot_cols[j] = where(gt(has_slot, zero_i64), token_slot, full({}, -1.0, i64));
    kept_cols[j] = has_slot;
    offset = add(offset, sum(keep, {0}));
  }

  RoutingResult r;
  r.table.expert = cat(choice, 1);
  r.table.slot = cat(slot_cols, 1);
  r.table.experts = experts;
  r.table.capacity = capacity;
  Tensor kept = cat(kept_cols, 1).to(dtype);
  Tensor weight = mul(gather(gates, 1, r.table.expert), kept);  // (S, k)
  if (k > 1) {
    double eps = dtype == DType::F64 ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
    weight = div(weight, maximum(sum(weight, {1}, true), full({}, eps, {dtype, device})));
  }
  r.table.weight = weight;

  // Losses: aux from the first choice before dropping; z-loss from the clean logits.
  Tensor first_fraction = mean(mask[0].to(dtype), {0});
  r.aux_loss = mul(sum(mul(mean(gates, {0}), first_fraction)), static_cast<double>(experts));
  Tensor row_max = max(plain, 1, /*keepdim=*/true);
  Tensor lse = add(log(sum(exp(sub(logits, row_max)), {1})), row_max.squeeze(1));
  r.z_loss = mean(mul(lse, lse));

  std::vector<int64_t> counts = stack({routed, offset}, 0).to_vector<int64_t>();
  r.stats.routed.assign(counts.begin(), counts.begin() + experts);
  r.stats.kept.assign(counts.begin() + experts, counts.end());
  r.stats.capacity = capacity;
  return r;
}

}  // namespace mt
