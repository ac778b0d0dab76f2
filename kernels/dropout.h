// Launcher for dropout: keep[i] = philox_uniform(seed, offset + i) >= p, the same stream the CPU kernel
// draws, so both devices drop the same elements. T: float, double, __nv_bfloat16, __half.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// out[i] = keep[i] ? in[i] / (1 - p) : 0 (0 everywhere when p = 1); mask[i] = keep[i]. offset_base: null, or
// device memory whose value (a multiple of 4) the kernel adds to offset (Note [The captured step]).
template <typename T>
cudaError_t dropout_forward(const T* in, T* out, bool* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                            const uint64_t* offset_base, cudaStream_t stream);

}  // namespace mt::gpu
