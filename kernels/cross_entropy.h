// Launchers for the fused cross-entropy loss over rows of logits (rows, vocab): forward writes the
// per-row loss and logsumexp; backward writes dlogits in one pass from the saved logsumexp.
// T: float, double, __nv_bfloat16, __half; S, the type of losses, lse and grad_losses: float, or double
// with T = double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// lse[n] = logsumexp(logits[n]); losses[n] = lse[n] - logits[n, targets[n]], or 0 where targets[n] ==
// ignore_index; a target outside [0, vocab) gives a NaN loss.
template <typename T, typename S>
cudaError_t cross_entropy_forward(const T* logits, const int64_t* targets, int64_t ignore_index, S* losses, S* lse,
                                  int64_t rows, int64_t vocab, cudaStream_t stream);
// dlogits[n, v] = grad_losses[n] (1 when grad_losses is null) * (exp(logits[n, v] - lse[n]) - (v == targets[n])); 0 on ignored rows.
template <typename T, typename S>
cudaError_t cross_entropy_backward(const T* logits, const int64_t* targets, int64_t ignore_index, const S* lse,
                                   const S* grad_losses, T* dlogits, int64_t rows, int64_t vocab,
                                   cudaStream_t stream);

// Both at once, in place: losses and lse as cross_entropy_forward, then logits[n, v] overwritten with
// exp(logits[n, v] - lse[n]) - (v == targets[n]) (0 on ignored rows). One read and one write of the row.
template <typename T, typename S>
cudaError_t cross_entropy_with_grad(T* logits, const int64_t* targets, int64_t ignore_index, S* losses, S* lse,
                                    int64_t rows, int64_t vocab, cudaStream_t stream);

}  // namespace mt::gpu
