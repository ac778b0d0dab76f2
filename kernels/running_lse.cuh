// Running logsumexp of scaled values for one-pass row kernels (cross-entropy, distillation): m, the
// largest scaled value seen, s, the sum of exp(v - m), and ws, the sum of exp(v - m) * w for optional
// per-element weights w (an expectation under the row's softmax). For f32, m is kept in base-2 units so
// that each term is one FMA and one hardware exp2; f64 uses exp.
#pragma once
#include <type_traits>

#include "device_utils.cuh"
#include "fast_exp.cuh"

namespace mt::gpu {

template <typename A>
struct RunningLse {
  static constexpr bool kBase2 = std::is_same_v<A, float>;
  A k;  // raw value -> scaled units: scale (* log2(e) for f32)
  A m = neg_inf<A>(), s = 0, ws = 0;

  // Tracks logsumexp(scale * v) over the values added.
  __device__ __forceinline__ explicit RunningLse(A scale = 1) : k(kBase2 ? scale * kLog2e : scale) {}

  // exp of a difference of scaled values.
  __device__ __forceinline__ static A exp_scaled(A d) {
    if constexpr (kBase2) return ex2_approx(d);
    else return exp_acc(d);
  }
  // exp(scale * v - top) for a raw v and a scaled top.
  __device__ __forceinline__ A term(A v, A top) const { return exp_scaled(fma_acc(v, k, -top)); }

  // Moves m up to the largest of v (returns false when m and all of v are -inf: nothing to add).
  template <int N>
  __device__ __forceinline__ bool raise(const A (&v)[N]) {
    A top = v[0];
#pragma unroll
    for (int j = 1; j < N; ++j) top = fmax(top, v[j]);  // a NaN is dropped here but poisons s below
    if (top == neg_inf<A>() && m == neg_inf<A>()) return false;  // nothing but -inf so far: s stays 0
    A t = top * k;
    if (t > m) {
      A f = exp_scaled(m - t);  // 0 while m is -inf
      s *= f;
      ws *= f;
      m = t;
    }
    return true;
  }

  template <int N>
  __device__ __forceinline__ void add(const A (&v)[N]) {
    if (!raise(v)) return;
#pragma unroll
    for (int j = 0; j < N; ++j) s += term(v[j], m);
  }

  // Adds the values v with weights w.
  template <int N>
  __device__ __forceinline__ void add(const A (&v)[N], const A (&w)[N]) {
    if (!raise(v)) return;
#pragma unroll
    for (int j = 0; j < N; ++j) {
      A e = term(v[j], m);
      s += e;
      ws = fma_acc(e, w[j], ws);
    }
  }

  // Adds another running state; the same result whichever of the two calls it.
  __device__ __forceinline__ void merge(A om, A os, A ows = 0) {
    A t = fmax(m, om);
    if (t == neg_inf<A>()) return;
    A f = exp_scaled(m - t), of = exp_scaled(om - t);
    s = s * f + os * of;
    ws = ws * f + ows * of;
    m = t;
  }

  // Merges the running states of the 32 lanes of a warp (every lane ends with the warp's state).
  __device__ __forceinline__ void warp_merge() {
    for (int o = 16; o > 0; o >>= 1) {
      A om = __shfl_xor_sync(0xffffffffu, m, o), os = __shfl_xor_sync(0xffffffffu, s, o);
      A ows = __shfl_xor_sync(0xffffffffu, ws, o);
      merge(om, os, ows);
    }
  }

  // logsumexp(scale * v) in natural units, and the weighted mean sum(softmax(scale * v) * w).
  __device__ __forceinline__ A lse() const { return kBase2 ? m * kLn2 + log_acc(s) : m + log_acc(s); }
  __device__ __forceinline__ A weighted_mean() const { return ws / s; }
};

}  // namespace mt::gpu
