// Launchers for causal attention on tensor cores (FlashAttention-2 schedule) over contiguous
// (BH, T, Dh) bf16 / f16 tensors, Dh 64 or 128, every pointer 16-byte aligned, scale > 0; f32
// logsumexp. Same contracts as attention.h, whose kernels take every other case.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// Whether the tensor-core kernels take this head dim and scale.
constexpr bool flash_attention_fits(int64_t head_dim, double scale) {
  return (head_dim == 64 || head_dim == 128) && scale > 0;
}

// out = softmax(scale * q k^T, causal) v; lse[bh, i] = logsumexp_j(scale * q_i . k_j), j <= i.
// T: __nv_bfloat16 or __half.
template <typename T>
cudaError_t flash_attention_forward(const T* q, const T* k, const T* v, T* out, float* lse, int64_t bh, int64_t seq,
                                    int head_dim, double scale, cudaStream_t stream);

// dq, dk, dv from dout, recomputing the probabilities from lse; deterministic (no atomics).
// `delta` is bh * seq floats of scratch.
template <typename T>
cudaError_t flash_attention_backward(const T* q, const T* k, const T* v, const T* out, const T* dout, const float* lse,
                                     T* dq, T* dk, T* dv, float* delta, int64_t bh, int64_t seq, int head_dim,
                                     double scale, cudaStream_t stream);

}  // namespace mt::gpu
