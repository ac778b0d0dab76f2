// Launchers for causal attention over contiguous (BH, T, Dh) tensors (BH = batch * heads): forward
// writes the output and the per-row logsumexp; backward computes dq, dk, dv without atomics.
// T: float, double, __nv_bfloat16, __half, with f32 accumulation (f64 for double); Dh <= 256.
// S, the logsumexp type: float, or double with T = double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

constexpr int kAttentionMaxHeadDim = 256;

// out = softmax(scale * q k^T, causal) v; lse[bh, i] = logsumexp_j(scale * q_i . k_j), j <= i.
template <typename T, typename S>
cudaError_t attention_forward(const T* q, const T* k, const T* v, T* out, S* lse, int64_t bh, int64_t seq,
                              int head_dim, double scale, cudaStream_t stream);

// `delta` holds bh * seq accumulation-type elements (float, or double for T = double) of scratch.
template <typename T, typename S>
cudaError_t attention_backward(const T* q, const T* k, const T* v, const T* out, const T* dout, const S* lse,
                               T* dq, T* dk, T* dv, void* delta, int64_t bh, int64_t seq, int head_dim, double scale,
                               cudaStream_t stream);

}  // namespace mt::gpu
