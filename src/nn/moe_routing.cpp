// The gating algorithm around the fused moe_route kernel: capacity, noise, random token selection,
// the buffer map, and the autograd of weights, aux and z losses. Only the capacity (dropless mode)
// leaves the device during a forward.
#include "mt/nn/moe_routing.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
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

std::vector<int64_t> RoutingStats::routed() const {
  return counts.defined() ? counts.select(0, 0).to_vector<int64_t>() : std::vector<int64_t>{};
}

std::vector<int64_t> RoutingStats::kept() const {
  return counts.defined() ? counts.select(0, 1).to_vector<int64_t>() : std::vector<int64_t>{};
}

double RoutingStats::drop_rate() const {
  std::vector<int64_t> both = counts.defined() ? counts.to_vector<int64_t>() : std::vector<int64_t>{};
  const size_t experts = both.size() / 2;
  int64_t routed_total = 0, kept_total = 0;
  for (size_t e = 0; e < experts; ++e) {
    routed_total += both[e];
    kept_total += both[experts + e];
  }
  return routed_total == 0 ? 0.0 : 1.0 - static_cast<double>(kept_total) / static_cast<double>(routed_total);
}

namespace {

// Gumbel(0, 1) noise: -log(-log(U)); U is drawn in f64 on [1e-20, 1) so neither log can overflow.
Tensor gumbel(const Shape& shape, DType dtype, Device device, Generator& gen) {
  Tensor u = uniform(shape, 1e-20, 1.0, gen, {DType::F64, device});
  return neg(log(neg(log(u)))).to(dtype);
}

// Keep flags (S, E) i64 of one choice level under random token selection: among the tokens whose
// mask (S, E) i64 is set for expert e, keep the room[e] of highest priority.
Tensor keep_by_priority(const Tensor& mask, const Tensor& room, int64_t capacity, Generator& gen) {
  Device device = mask.device();
  TensorOptions i64{DType::I64, device};
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

// Slots (S, k) under random token selection, for choices `expert` (S, k), and the kept count per
// expert (E): Note [Choice-major slots], with each level's keepers picked by keep_by_priority.
std::pair<Tensor, Tensor> random_token_slots(const Tensor& expert, int64_t experts, int64_t capacity, Generator& gen) {
  Device device = expert.device();
  TensorOptions i64{DType::I64, device};
  const int64_t k = expert.size(1);
  Tensor expert_ids = arange(0, static_cast<double>(experts), 1, i64);
  Tensor zero = zeros({}, i64);
  Tensor offset = zeros({experts}, i64);  // slots already filled by earlier levels
  Tensor capacity_t = full({}, static_cast<double>(capacity), i64);
  std::vector<Tensor> slot_cols(k);
  for (int64_t j = 0; j < k; ++j) {
    Tensor mask = eq(expert.narrow(1, j, 1), expert_ids).to(DType::I64);  // (S, E)
    Tensor keep = keep_by_priority(mask, sub(capacity_t, offset), capacity, gen);
    Tensor slot = add(offset, add(cumsum(keep, 0), -1.0));  // (S, E), meaningful where kept
    Tensor has_slot = sum(keep, {1}, /*keepdim=*/true);      // (S, 1): 0 or 1
    Tensor token_slot = sum(mul(slot, keep), {1}, /*keepdim=*/true);
    slot_cols[j] = where(gt(has_slot, zero), token_slot, full({}, -1.0, i64));
    offset = add(offset, sum(keep, {0}));
  }
  return {cat(slot_cols, 1), offset};
}

}  // namespace

// Note [Fused routing]
// One kernel (moe_route, CPU and CUDA) takes the choices, the per-expert scan for slots and
// capacity, the weights and the counters and loss statistics, so the table costs a fixed handful
// of launches and no host sync; only dropless routing reads the largest count back for the
// capacity. The choices are argmaxes of the logits (ties to the lower expert), not of the softmax
// output: the same choice mathematically, but independent of how each device rounds exp, so the
// CPU and CUDA tables agree exactly for equal logits. Random token selection runs the kernel
// without a limit and then picks the keepers with public ops (keep_by_priority).
//
// Note [Noisy choices]
// RSample (training only) adds one draw of Gumbel noise to the logits. Top-1 picks
// argmax(logits + G); for k >= 2 the first choice stays argmax(logits) and the later choices take
// the argmax of the remaining logits + G, as DeepSpeed's top2gating. (DeepSpeed also samples the
// second expert when RSample is off, top2_2nd_expert_sampling; we follow noisy_gate instead, so
// eval routing is deterministic.)
//
// Note [Choice-major slots]
// Choice level j fills an expert's slots only after every kept choice of levels < j: DeepSpeed's
// top-2 rule (locations2 += sum(mask1)), extended to any k. Within a level, tokens are kept
// earliest first, or by a U(0, 1) priority under random token selection (DeepSpeed's RTS), until
// the expert is full; kept tokens take slots in token order. Weights are renormalised over the
// kept choices of each token (k >= 2), so a token whose second choice was dropped gets weight 1
// on its first; top-1 weights are the plain gate probability.
//
// Note [Values from the kernel, gradients from ops]
// Without autograd the kernel's weights, aux and z losses are used as they are. With autograd the
// weights are gathered from softmax(logits) by public ops, so their gradient is the ops' own; the
// aux loss (E * sum_e mean_s(gates)[e] * fraction[e], the fraction a constant) passes
// E / S * fraction[e] to every gate, and the z loss mean_s(lse^2) passes 2 / S * lse[s] * gates[s, e]
// to the logits.
RoutingResult route(const Tensor& logits, const RoutingOptions& o, Generator& gen) {
  MT_CHECK(logits.dim() == 2, "route: expected logits (tokens, experts), got ", logits.describe());
  DType dtype = logits.dtype();
  MT_CHECK(dtype == DType::F32 || dtype == DType::F64, "route: logits must be f32 (or f64), got ", logits.describe());
  const int64_t tokens = logits.size(0), experts = logits.size(1), k = o.top_k;
  MT_CHECK(tokens >= 1, "route: no tokens to route, got ", logits.describe());
  MT_CHECK(k >= 1 && k <= experts, "route: top_k must be in [1, ", experts, "], got ", k);
  Device device = logits.device();

  const bool random_selection = o.drop_tokens && o.random_token_selection;
  const int64_t drop_capacity = expert_capacity(tokens, experts, k, o.capacity_factor, o.min_capacity);
  Tensor noise = o.gumbel_noise ? gumbel(logits.shape(), dtype, device, gen) : Tensor();
  // Dropless and random selection route without a limit here (no count exceeds the token count).
  MoeRouting m = moe_route(logits, noise, k, o.drop_tokens && !random_selection ? drop_capacity : tokens);

  RoutingResult r;
  r.table.expert = m.expert;
  r.table.slot = m.slot;
  r.table.experts = experts;
  r.stats.counts = m.counts;
  int64_t capacity = drop_capacity;
  if (!o.drop_tokens) {
    std::vector<int64_t> routed = m.counts.select(0, 0).to_vector<int64_t>();  // the one host sync
    capacity = *std::max_element(routed.begin(), routed.end());
    if (o.capacity_group)
      capacity = static_cast<int64_t>(o.capacity_group->all_reduce(static_cast<double>(capacity), ReduceKind::kMax));
  }
  MT_ASSERT(capacity >= 1);
  if (random_selection) {
    auto [slot, kept] = random_token_slots(m.expert, experts, capacity, gen);
    r.table.slot = slot;
    r.stats.counts = stack({m.counts.select(0, 0), kept}, 0);
  }
  r.table.capacity = capacity;
  r.stats.capacity = capacity;
  r.table.buffer_choice = moe_buffer_map(r.table.expert, r.table.slot, experts, capacity);

  // Note [Values from the kernel, gradients from ops]
  const bool differentiable = grad_mode_enabled() && (logits.requires_grad() || logits.grad_fn() != nullptr);
  r.aux_loss = m.stats.narrow(0, 2 * experts, 1).reshape({});
  r.z_loss = m.stats.narrow(0, 2 * experts + 1, 1).reshape({});
  if (!differentiable && !random_selection) {
    r.table.weight = m.weight;
    return r;
  }
  Tensor gates = softmax(logits, 1);  // (S, E)
  Tensor kept = ge(r.table.slot, zeros({}, {DType::I64, device})).to(dtype);
  Tensor weight = mul(gather(gates, 1, r.table.expert), kept);  // (S, k)
  if (k > 1) {
    double eps = dtype == DType::F64 ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
    weight = div(weight, maximum(sum(weight, {1}, true), full({}, eps, {dtype, device})));
  }
  r.table.weight = weight;
  if (!differentiable) return r;

  const double per_token = 1.0 / static_cast<double>(tokens);
  Tensor fraction = m.stats.narrow(0, experts, experts);  // (E), a constant of the aux loss
  record_function("MoEAuxLossBackward", {gates}, {r.aux_loss},
                  [fraction, per_token, tokens, experts](const std::vector<Tensor>& g) {
                    Tensor per_expert = mul(mul(fraction, g[0]), static_cast<double>(experts) * per_token);
                    return std::vector<Tensor>{per_expert.unsqueeze(0).expand({tokens, experts})};
                  });
  Tensor lse = m.lse, probs = gates.detach();
  record_function("MoEZLossBackward", {logits}, {r.z_loss}, [lse, probs, per_token](const std::vector<Tensor>& g) {
    Tensor coef = mul(mul(lse, g[0]), 2.0 * per_token).unsqueeze(1);  // (S, 1)
    return std::vector<Tensor>{mul(probs, coef)};
  });
  return r;
}

}  // namespace mt
