// Launchers of the random-fill CUDA kernels (random.cu): Philox uniform and normal draws that give
// the same numbers as the CPU kernels for the same (seed, offset). Floating device types only.
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mt::gpu {

// offset_base: null, or device memory whose value the kernels add to offset (Note [The captured step]).
// out[i] = T(lo + (hi - lo) * philox_uniform(seed, offset + i)); bit-identical to the CPU.
template <typename T>
cudaError_t uniform(T* out, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double lo, double hi,
                    cudaStream_t stream);
// out[i] = T(mean + std * math::philox_normal(seed, offset, i)); equal to the CPU up to the last
// bits of the device's logf/cosf.
template <typename T>
cudaError_t normal(T* out, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double mean,
                   double std, cudaStream_t stream);

}  // namespace mt::gpu
