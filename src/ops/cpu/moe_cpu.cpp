// CPU kernels of the MoE ops: the fused routing (choices, slots, weights, counters and loss
// statistics in one pass per choice level, tokens in order) and the row moves between tokens and
// the expert-major buffer. These define the reference the CUDA kernels are compared with.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "cpu_kernels.h"
#include "cpu_loops.h"

namespace mt::cpu {

namespace {

template <typename T>
void route_typed(const Tensor& logits, const Tensor& noise, int64_t capacity, const Tensor& expert_t,
                 const Tensor& slot_t, const Tensor& weight_t, const Tensor& counts_t, const Tensor& lse_t,
                 const Tensor& stats_t) {
  const int64_t tokens = logits.size(0), experts = logits.size(1), k = expert_t.size(1);
  const T* logit = logits.data<T>();
  const T* nz = noise.defined() ? noise.data<T>() : nullptr;
  int64_t* expert = expert_t.data<int64_t>();
  int64_t* slot = slot_t.data<int64_t>();
  T* weight = weight_t.data<T>();
  int64_t* counts = counts_t.data<int64_t>();
  T* lse = lse_t.data<T>();
  T* stats = stats_t.data<T>();

  // Per token: softmax, the k choices and the probability of each (held in `weight` until the slots are known).
  std::vector<T> gate_sum(experts, T(0));
  T lse_sq_sum = 0;
  for (int64_t t = 0; t < tokens; ++t) {
    const T* row = logit + t * experts;
    const T* nrow = nz ? nz + t * experts : nullptr;
    T m = row[0];
    for (int64_t e = 1; e < experts; ++e) m = row[e] > m ? row[e] : m;
    T s = 0;
    for (int64_t e = 0; e < experts; ++e) s += std::exp(row[e] - m);
    T inv = T(1) / s;
    lse[t] = m + std::log(s);
    lse_sq_sum += lse[t] * lse[t];
    for (int64_t e = 0; e < experts; ++e) gate_sum[e] += std::exp(row[e] - m) * inv;
    for (int64_t j = 0; j < k; ++j) {
      bool noisy = nrow && (j > 0 || k == 1);
      int64_t best = -1;
      T best_v = 0;
      for (int64_t e = 0; e < experts; ++e) {
        bool taken = false;
        for (int64_t i = 0; i < j; ++i) taken = taken || expert[t * k + i] == e;
        if (taken) continue;
        T v = noisy ? row[e] + nrow[e] : row[e];
        if (best < 0 || v > best_v) {
          best = e;
          best_v = v;
        }
      }
      expert[t * k + j] = best;
      weight[t * k + j] = std::exp(row[best] - m) * inv;
    }
  }

  // Slots, level by level: a choice takes the next free slot of its expert while there is room.
  std::vector<int64_t> filled(experts, 0), routed(experts, 0), seen(experts), first(experts, 0);
  for (int64_t j = 0; j < k; ++j) {
    std::fill(seen.begin(), seen.end(), 0);
    for (int64_t t = 0; t < tokens; ++t) {
      int64_t e = expert[t * k + j];
      int64_t s = filled[e] + seen[e]++;
      slot[t * k + j] = s < capacity ? s : -1;
    }
    for (int64_t e = 0; e < experts; ++e) {
      filled[e] += std::min(seen[e], std::max<int64_t>(capacity - filled[e], 0));
      routed[e] += seen[e];
      if (j == 0) first[e] = seen[e];
    }
  }

  // Weights over the kept choices.
  const T eps = std::numeric_limits<T>::epsilon();
  for (int64_t t = 0; t < tokens; ++t) {
    T total = 0;
    for (int64_t j = 0; j < k; ++j) {
      T& w = weight[t * k + j];
      w = slot[t * k + j] >= 0 ? w : T(0);
      total += w;
    }
    if (k > 1) {
      T denom = std::max(total, eps);
      for (int64_t j = 0; j < k; ++j) weight[t * k + j] /= denom;
    }
  }

  T aux = 0;
  for (int64_t e = 0; e < experts; ++e) {
    counts[e] = routed[e];
    counts[experts + e] = filled[e];
    T mean = gate_sum[e] / static_cast<T>(tokens);
    T fraction = static_cast<T>(first[e]) / static_cast<T>(tokens);
    stats[e] = mean;
    stats[experts + e] = fraction;
    aux += mean * fraction;
  }
  stats[2 * experts] = aux * static_cast<T>(experts);
  stats[2 * experts + 1] = lse_sq_sum / static_cast<T>(tokens);
}

void check_row(int64_t row, int64_t rows, const char* op) {
  MT_CHECK(row >= 0 && row < rows, op, ": buffer row ", row, " out of range [0, ", rows, ")");
}

}  // namespace

void moe_route(const Tensor& logits, const Tensor& noise, int64_t capacity, const Tensor& expert, const Tensor& slot,
               const Tensor& weight, const Tensor& counts, const Tensor& lse, const Tensor& stats) {
  switch (logits.dtype()) {
    case DType::kF32: return route_typed<float>(logits, noise, capacity, expert, slot, weight, counts, lse, stats);
    case DType::kF64: return route_typed<double>(logits, noise, capacity, expert, slot, weight, counts, lse, stats);
    default: MT_FAIL("moe_route: logits must be f32 or f64, got ", logits.describe());
  }
}

namespace {

// A float's bits as an unsigned key in the float order (NaN above +inf), as the CUDA kernel ranks them.
uint32_t ordered_bits(float v) {
  uint32_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  return bits & 0x80000000u ? ~bits : bits | 0x80000000u;
}

}  // namespace

void moe_select(const Tensor& expert, const Tensor& priority, int64_t capacity, const Tensor& slot, const Tensor& kept) {
  const int64_t tokens = expert.size(0), experts = priority.size(1);
  const int64_t* ex = expert.data<int64_t>();
  const float* pr = priority.data<float>();
  int64_t* sl = slot.data<int64_t>();
  int64_t* kp = kept.data<int64_t>();
  std::vector<std::vector<int64_t>> routed(experts);  // each expert's tokens, in order
  for (int64_t t = 0; t < tokens; ++t) {
    MT_CHECK(ex[t] >= 0 && ex[t] < experts, "moe_select: expert ", ex[t], " of token ", t, " is outside [0, ", experts, ")");
    routed[ex[t]].push_back(t);
  }
  std::vector<char> keep(tokens, 1);
  for (int64_t e = 0; e < experts; ++e) {
    std::vector<int64_t>& r = routed[e];
    if (static_cast<int64_t>(r.size()) <= capacity) continue;
    std::vector<int64_t> order = r;  // by priority, high first; ties to the lower token
    std::stable_sort(order.begin(), order.end(), [&](int64_t a, int64_t b) {
      return ordered_bits(pr[a * experts + e]) > ordered_bits(pr[b * experts + e]);
    });
    for (size_t i = static_cast<size_t>(capacity); i < order.size(); ++i) keep[order[i]] = 0;
  }
  for (int64_t e = 0; e < experts; ++e) {
    int64_t next = 0;
    for (int64_t t : routed[e]) sl[t] = keep[t] ? next++ : -1;
    kp[e] = next;
  }
}

void moe_buffer_map(const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& buffer_choice) {
  const int64_t choices = expert.numel(), rows = buffer_choice.numel();
  const int64_t* ex = expert.data<int64_t>();
  const int64_t* sl = slot.data<int64_t>();
  int64_t* out = buffer_choice.data<int64_t>();
  std::fill(out, out + rows, int64_t{-1});
  for (int64_t c = 0; c < choices; ++c) {
    if (sl[c] < 0) continue;
    MT_CHECK(sl[c] < capacity, "moe_buffer_map: slot ", sl[c], " of choice ", c, " exceeds the capacity ", capacity);
    int64_t row = ex[c] * capacity + sl[c];
    check_row(row, rows, "moe_buffer_map");
    out[row] = c;
  }
}

void moe_permute(const Tensor& in, const Tensor& buffer_choice, int64_t top_k, const Tensor& weight,
                 const Tensor& out) {
  const int64_t rows = out.size(0), d = out.size(1), choices = in.size(0) * top_k;
  const int64_t* bc = buffer_choice.data<int64_t>();
  for (int64_t r = 0; r < rows; ++r) MT_CHECK(bc[r] < choices, "moe_permute: choice ", bc[r], " of row ", r, " out of range [-1, ", choices, ")");
  dispatch_floating(in.dtype(), "moe_permute", [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = in.data<T>();
    const A* w = weight.defined() ? weight.data<A>() : nullptr;
    T* y = out.data<T>();
    parallel_range(rows, 16, [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        int64_t c = bc[r];
        T* dst = y + r * d;
        if (c < 0) {
          std::fill(dst, dst + d, T(0.0f));
          continue;
        }
        const T* src = x + (c / top_k) * d;
        A scale = w ? w[c] : A(1);
        for (int64_t i = 0; i < d; ++i) dst[i] = static_cast<T>(scale * static_cast<A>(src[i]));
      }
    });
  });
}

void moe_unpermute(const Tensor& in, const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& weight,
                   const Tensor& out) {
  const int64_t tokens = out.size(0), d = out.size(1), k = expert.size(1), rows = in.size(0);
  const int64_t* ex = expert.data<int64_t>();
  const int64_t* sl = slot.data<int64_t>();
  for (int64_t c = 0; c < tokens * k; ++c)
    if (sl[c] >= 0) check_row(ex[c] * capacity + sl[c], rows, "moe_unpermute");
  dispatch_floating(in.dtype(), "moe_unpermute", [&]<typename T>() {
    using A = acc_t<T>;
    const T* y = in.data<T>();
    const A* w = weight.defined() ? weight.data<A>() : nullptr;
    T* o = out.data<T>();
    parallel_range(tokens, 16, [&](int64_t lo, int64_t hi) {
      std::vector<A> acc(d);
      for (int64_t t = lo; t < hi; ++t) {
        std::fill(acc.begin(), acc.end(), A(0));
        for (int64_t j = 0; j < k; ++j) {
          int64_t c = t * k + j;
          if (sl[c] < 0) continue;
          const T* src = y + (ex[c] * capacity + sl[c]) * d;
          A scale = w ? w[c] : A(1);
          for (int64_t i = 0; i < d; ++i) acc[i] += scale * static_cast<A>(src[i]);
        }
        for (int64_t i = 0; i < d; ++i) o[t * d + i] = static_cast<T>(acc[i]);
      }
    });
  });
}

void moe_unpermute_weight_grad(const Tensor& grad_out, const Tensor& in, const Tensor& expert, const Tensor& slot,
                               int64_t capacity, const Tensor& grad_weight) {
  const int64_t tokens = grad_out.size(0), d = grad_out.size(1), k = expert.size(1), rows = in.size(0);
  const int64_t* ex = expert.data<int64_t>();
  const int64_t* sl = slot.data<int64_t>();
  for (int64_t c = 0; c < tokens * k; ++c)
    if (sl[c] >= 0) check_row(ex[c] * capacity + sl[c], rows, "moe_unpermute_weight_grad");
  dispatch_floating(in.dtype(), "moe_unpermute_weight_grad", [&]<typename T>() {
    using A = acc_t<T>;
    const T* g = grad_out.data<T>();
    const T* y = in.data<T>();
    A* gw = grad_weight.data<A>();
    parallel_range(tokens * k, 64, [&](int64_t lo, int64_t hi) {
      for (int64_t c = lo; c < hi; ++c) {
        A dot = 0;
        if (sl[c] >= 0) {
          const T* gt = g + (c / k) * d;
          const T* src = y + (ex[c] * capacity + sl[c]) * d;
          for (int64_t i = 0; i < d; ++i) dot += static_cast<A>(gt[i]) * static_cast<A>(src[i]);
        }
        gw[c] = dot;
      }
    });
  });
}

}  // namespace mt::cpu
