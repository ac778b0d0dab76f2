// The gating algorithm around the fused moe_route kernel: capacity, noise, random token selection,
// the buffer map (packed when dropless on one rank), and the autograd of weights, aux and z losses. Only
// the counts (dropless mode) leave the device during a forward.
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
  Tensor u = uniform(shape, 1e-20, 1.0, gen, {DType::kF64, device});
  return neg(log(neg(log(u)))).to(dtype);
}

// Keep flags (S, E) i64: among the tokens whose mask (S, E) i64 is set for expert e, the `capacity`
// of highest priority (S, E); topk breaks ties by the lower token index.
Tensor keep_by_priority(const Tensor& mask, const Tensor& priority, int64_t capacity) {
  const int64_t tokens = mask.size(0), experts = mask.size(1), n = std::min(capacity, tokens);
  TensorOptions i64{DType::kI64, mask.device()};
  Tensor best = topk(priority, n, 0).second;  // (n, E) tokens by priority
  Tensor selected = scatter_add(zeros({tokens, experts}, i64), 0, best, ones({n, experts}, i64));
  return mul(mask, selected);
}

// Slots (S, k) of the choices `expert` (S, k) whose (token, expert) pair is kept in keep (S, E) i64:
// one cumulative sum over the tokens in order, -1 for the dropped choices.
Tensor slots_in_token_order(const Tensor& keep, const Tensor& expert) {
  TensorOptions i64{DType::kI64, keep.device()};
  Tensor location = add(cumsum(keep, 0), -1.0);  // (S, E)
  return where(gt(gather(keep, 1, expert), zeros({}, i64)), gather(location, 1, expert), full({}, -1.0, i64));
}

// Note [Packed dropless buffer]: a dropless row count rounded up to a whole block of rows
// (RoutingOptions::packed_row_block; 0: 128 on a GPU, 1 on the CPU).
int64_t whole_row_blocks(int64_t rows, int64_t block, Device device) {
  if (block == 0) block = device.is_cuda() ? 128 : 1;
  return (rows + block - 1) / block * block;
}

// rows (outer * inner, n) -> (inner * outer, n): batch-major tokens to sequence-major and back.
Tensor swap_token_order(const Tensor& rows, int64_t outer, int64_t inner) {
  const int64_t n = rows.size(1);
  return rows.reshape({outer, inner, n}).transpose(0, 1).reshape({outer * inner, n});
}

}  // namespace

// Note [Fused routing]
// One kernel (moe_route, CPU and CUDA) takes the choices, the per-expert scan for slots and
// capacity, the weights and the counters and loss statistics, so the table costs a fixed handful
// of launches and no host sync; only dropless routing reads the counts back (the packed buffer's
// rows, or the largest count as the capacity under expert parallelism). The choices are argmaxes of
// the logits (ties to the lower expert), not of the softmax output: the same choice mathematically,
// but independent of how each device rounds exp, so the CPU and CUDA tables agree exactly for equal
// logits. Random token selection runs the kernel
// without a limit and then picks the keepers and their slots with moe_select, one block per expert
// (DeepSpeed's topk over mask x U(0, 1) keeps the same tokens, except that a routed token whose draw is
// exactly 0 could lose its place to unrouted ones there); top-k gating (k > 2) picks them with public ops
// (keep_by_priority).
//
// Note [Noisy choices]
// One draw of Gumbel noise G (S, E) goes on the logits of the noisy choices. Top-1 under RSample
// (training only) picks argmax(logits + G). Top-2 keeps the first choice argmax(logits) and, with
// second-expert sampling (DeepSpeed's top2_2nd_expert_sampling, default on, in training and
// evaluation as DeepSpeed does) or RSample, takes argmax(logits + G) over the other experts.
// k > 2 with RSample samples the later choices the same way; DeepSpeed's topkgating has no noise.
//
// Note [Choice-major slots]
// Top-2: choice level j fills an expert's slots only after every kept choice of levels < j
// (DeepSpeed's locations2 += sum(mask1)); within a level the earliest tokens are kept until the
// expert is full. Top-1 under random token selection (DeepSpeed's RTS, default on) keeps instead
// the `capacity` tokens of highest priority mask x U(0, 1). k > 2 follows DeepSpeed's topkgating:
// each expert keeps the `capacity` chosen (token, expert) pairs of highest gate probability
// (drop_policy "probs", its default), and the kept pairs take slots by one cumulative sum in token
// order. Kept tokens always take slots in token order. Weights are renormalised over the kept
// choices of each token (k >= 2), so a token whose second choice was dropped gets weight 1 on its
// first; top-1 weights are the plain gate probability.
//
// Note [Sequence-major routing]
// Megatron-DeepSpeed's activations are [sequence, batch, d], so DeepSpeed sees the tokens of a
// micro-batch position by position: "earliest first" drops the late positions of every sequence,
// not the last sequences, and the noise draws and slots follow that order. With
// options.sequence_length = T the logits (B * T, E) are reordered to (T * B, E), routed, and the
// table is reordered back, so the rest of the layer stays batch-major.
//
// Note [Values from the kernel, gradients from ops]
// Without autograd the kernel's weights, aux and z losses are used as they are. With autograd the
// weights are gathered from softmax(logits) by public ops, so their gradient is the ops' own; the
// aux loss (E * sum_e mean_s(gates)[e] * fraction[e], the fraction a constant) passes
// E / S * fraction[e] to every gate, and the z loss mean_s(lse^2) passes 2 / S * lse[s] * gates[s, e]
// to the logits.
namespace {

// route() over the tokens in the order given, without the buffer map (route() adds it once, in the
// order of the caller's tokens).
RoutingResult route_in_order(const Tensor& logits, const RoutingOptions& o, Generator& gen) {
  DType dtype = logits.dtype();
  const int64_t tokens = logits.size(0), experts = logits.size(1), k = o.top_k;
  Device device = logits.device();
  const RoutingNoise none;
  const RoutingNoise& given = o.noise ? *o.noise : none;
  auto check_noise = [&](const Tensor& t, DType want, const char* name) {
    MT_CHECK(t.shape() == logits.shape() && t.dtype() == want && t.device() == device, "route: expected noise.", name,
             " ", logits.shape(), " ", dtype_name(want), " like the logits, got ", t.describe());
  };
  const bool random_selection = o.drop_tokens && o.random_token_selection && k == 1;
  const bool topk_gating = k > 2;
  const int64_t drop_capacity = expert_capacity(tokens, experts, k, o.capacity_factor, o.min_capacity);
  const bool noisy = (o.gumbel_noise && k != 2) || (k == 2 && (o.gumbel_noise || o.second_expert_sampling));
  Tensor noise;
  if (noisy && given.gumbel.defined()) {
    check_noise(given.gumbel, dtype, "gumbel");
    noise = given.gumbel;
  } else if (noisy) {
    noise = gumbel(logits.shape(), dtype, device, gen);
  }
  // Random selection, top-k and dropless route without a limit here (no count exceeds the token
  // count) and pick their slots below.
  const bool kernel_drops = o.drop_tokens && !random_selection && !topk_gating;
  MoeRouting m = moe_route(logits, noise, k, kernel_drops ? drop_capacity : tokens);

  RoutingResult r;
  r.table.expert = m.expert;
  r.table.slot = m.slot;
  r.table.experts = experts;
  r.stats.counts = m.counts;
  int64_t capacity = drop_capacity;
  if (!o.drop_tokens) {
    std::vector<int64_t> routed = m.counts.select(0, 0).to_vector<int64_t>();  // the one host sync
    capacity = *std::max_element(routed.begin(), routed.end());
    if (o.capacity_group) {
      capacity = static_cast<int64_t>(o.capacity_group->all_reduce(static_cast<double>(capacity), ReduceKind::kMax));
      capacity = whole_row_blocks(capacity, o.packed_row_block, device);  // the same few shapes as packed rows
    } else {
      for (int64_t n : routed)  // dropless keeps every choice
        r.table.expert_rows.push_back(whole_row_blocks(n, o.packed_row_block, device));
    }
  }
  MT_ASSERT(capacity >= 1);
  TensorOptions i64{DType::kI64, device};
  const bool ops_slots = random_selection || topk_gating;
  if (random_selection) {  // Note [Choice-major slots]: one kernel picks the keepers and their slots
    Tensor u = given.uniform;
    if (u.defined()) check_noise(u, DType::kF32, "uniform");
    else u = rand({tokens, experts}, gen, {DType::kF32, device});
    MoeSelection kept = moe_select(m.expert, u, capacity);
    r.table.slot = kept.slot;
    r.stats.counts = stack({m.counts.select(0, 0), kept.kept}, 0);
  } else if (topk_gating) {
    Tensor mask = scatter_add(zeros({tokens, experts}, i64), 1, m.expert, ones({tokens, k}, i64));  // (S, E) 0/1
    Tensor keep = mask;  // dropless keeps every pair
    if (o.drop_tokens) keep = keep_by_priority(mask, mul(mask.to(dtype), softmax(logits.detach(), 1)), capacity);
    r.table.slot = slots_in_token_order(keep, m.expert);
    r.stats.counts = stack({m.counts.select(0, 0), sum(keep, {0})}, 0);
  }
  r.table.capacity = capacity;
  r.stats.capacity = capacity;

  // Note [Values from the kernel, gradients from ops]
  const bool differentiable = grad_mode_enabled() && (logits.requires_grad() || logits.grad_fn() != nullptr);
  // The aux loss's per-expert fraction: of the first choices (k <= 2), or of all k choices over k (k > 2).
  Tensor fraction = m.stats.narrow(0, experts, experts);  // (E)
  r.aux_loss = m.stats.narrow(0, 2 * experts, 1).reshape({});
  if (topk_gating) {
    fraction = mul(m.counts.select(0, 0).to(dtype), 1.0 / static_cast<double>(tokens * k));
    r.aux_loss = mul(sum(mul(m.stats.narrow(0, 0, experts), fraction)), static_cast<double>(experts));
  }
  r.z_loss = m.stats.narrow(0, 2 * experts + 1, 1).reshape({});
  if (!differentiable && !ops_slots) {
    r.table.weight = m.weight;
    return r;
  }
  Tensor gates = softmax(logits, 1);  // (S, E)
  Tensor kept = ge(r.table.slot, zeros({}, {DType::kI64, device})).to(dtype);
  Tensor weight = mul(gather(gates, 1, r.table.expert), kept);  // (S, k)
  if (k > 1) {
    double eps = dtype == DType::kF64 ? std::numeric_limits<double>::epsilon() : std::numeric_limits<float>::epsilon();
    weight = div(weight, maximum(sum(weight, {1}, true), full({}, eps, {dtype, device})));
  }
  r.table.weight = weight;
  if (!differentiable) return r;

  const double per_token = 1.0 / static_cast<double>(tokens);
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

}  // namespace

RoutingResult route(const Tensor& logits, const RoutingOptions& o, Generator& gen) {
  MT_CHECK(logits.dim() == 2, "route: expected logits (tokens, experts), got ", logits.describe());
  MT_CHECK(logits.dtype() == DType::kF32 || logits.dtype() == DType::kF64, "route: logits must be f32 (or f64), got ",
           logits.describe());
  const int64_t tokens = logits.size(0), experts = logits.size(1);
  MT_CHECK(tokens >= 1, "route: no tokens to route, got ", logits.describe());
  MT_CHECK(o.top_k >= 1 && o.top_k <= experts, "route: top_k must be in [1, ", experts, "], got ", o.top_k);
  MT_CHECK(o.packed_row_block >= 0, "route: packed_row_block must be >= 0, got ", o.packed_row_block);
  const int64_t seq = o.sequence_length;
  MT_CHECK(seq >= 0 && (seq == 0 || tokens % seq == 0), "route: ", tokens, " tokens are not whole sequences of ",
           seq, " positions");
  RoutingResult r;
  if (seq > 0 && seq < tokens) {  // Note [Sequence-major routing]
    const int64_t batch = tokens / seq;
    r = route_in_order(swap_token_order(logits, batch, seq), o, gen);
    r.table.expert = swap_token_order(r.table.expert, seq, batch);
    r.table.slot = swap_token_order(r.table.slot, seq, batch);
    r.table.weight = swap_token_order(r.table.weight, seq, batch);
  } else {
    r = route_in_order(logits, o, gen);
  }
  if (r.table.packed()) {  // Note [Packed dropless buffer]: row = the expert's first row + slot
    std::vector<int64_t> first(experts, 0);
    for (int64_t e = 1; e < experts; ++e) first[e] = first[e - 1] + r.table.expert_rows[e - 1];
    Tensor first_rows = Tensor::from_vector(first, {experts}).to(logits.device());
    const Tensor& expert = r.table.expert;
    r.table.buffer_row = add(index_select(first_rows, 0, expert.reshape({-1})).view(expert.shape()), r.table.slot);
  }
  const MoeRowMap map = r.table.row_map();
  r.table.buffer_choice = moe_buffer_map(map.expert, map.slot, r.table.packed() ? 1 : experts, map.capacity);
  return r;
}

int64_t RoutingTable::buffer_rows() const {
  if (!packed()) return experts * capacity;
  int64_t rows = 0;
  for (int64_t n : expert_rows) rows += n;
  return rows;
}

MoeRowMap RoutingTable::row_map() const {
  if (!packed()) return MoeRowMap{expert, slot, buffer_choice, capacity};
  return MoeRowMap{zeros(expert.shape(), {DType::kI64, expert.device()}), buffer_row, buffer_choice, buffer_rows()};
}

}  // namespace mt
