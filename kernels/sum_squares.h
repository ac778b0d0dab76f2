// Launcher for the sums of squares of many tensors at once (the gradient norm of clip_grad_norm):
// one pass over every element in a few launches, whatever the tensor count, instead of two launches
// per tensor. Deterministic: fixed blocks per tensor, partials summed in a fixed order.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// out[i] = sum over tensors[i]'s numel[i] elements of x^2, accumulated in A (float for float and the half
// types, double for double). `scratch` holds sum_squares_scratch(numel, n) values of A.
template <typename T, typename A>
cudaError_t sum_squares_many(const T* const* tensors, const int64_t* numel, int64_t n, A* out, A* scratch,
                             cudaStream_t stream);
int64_t sum_squares_scratch(const int64_t* numel, int64_t n);

}  // namespace mt::gpu
