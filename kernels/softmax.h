// Launchers for softmax / log_softmax over the last dim of a contiguous (rows, cols) matrix,
// forward and backward. T: float, double, __nv_bfloat16, __half; accumulation in f32 (f64 for double).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

enum class SoftmaxKind { kSoftmax, kLogSoftmax };

// out = softmax(in) or log_softmax(in), row by row.
template <typename T>
cudaError_t softmax_forward(const T* in, T* out, int64_t rows, int64_t cols, SoftmaxKind kind, cudaStream_t stream);
// grad_in = y * (g - sum(g * y)) (softmax) or g - exp(y) * sum(g) (log_softmax), y the forward output.
template <typename T>
cudaError_t softmax_backward(const T* grad_out, const T* y, T* grad_in, int64_t rows, int64_t cols, SoftmaxKind kind,
                             cudaStream_t stream);

}  // namespace mt::gpu
