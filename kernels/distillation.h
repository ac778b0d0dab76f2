// Launchers for the fused knowledge-distillation loss over rows of student and teacher logits (rows,
// vocab) at temperature T (inv_t = 1 / T): forward reads both once and writes the per-row KL and both
// logsumexps; backward writes dstudent in one pass from them. T: float, double, __nv_bfloat16, __half;
// S (kl, lse, grad_kl): float, or double with T = double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// lse_s[n] = logsumexp(student[n] * inv_t), lse_t[n] likewise; kl[n] = sum_v p_t (log p_t - log p_s) with
// p = softmax(logits[n] * inv_t), terms with p_t == 0 counting 0.
template <typename T, typename S>
cudaError_t distillation_forward(const T* student, const T* teacher, double inv_t, S* kl, S* lse_s, S* lse_t,
                                 int64_t rows, int64_t vocab, cudaStream_t stream);
// dstudent[n, v] = grad_kl[n] * inv_t * (p_s[n, v] - p_t[n, v]).
template <typename T, typename S>
cudaError_t distillation_backward(const T* student, const T* teacher, double inv_t, const S* lse_s, const S* lse_t,
                                  const S* grad_kl, T* dstudent, int64_t rows, int64_t vocab, cudaStream_t stream);

}  // namespace mt::gpu
