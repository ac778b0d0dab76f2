// Launch helpers of the grid-stride kernels (elementwise, reduction, indexing, MoE, random): grid sizing
// and thread indices, and the device-side index check. Element types and vectors: device_utils.cuh.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>

namespace mt::gpu {

constexpr int kThreads = 256;

// Blocks for `items` work items of one thread each, capped (kernels loop with a grid stride).
inline unsigned grid_for(int64_t items, int threads = kThreads) {
  int64_t blocks = (items + threads - 1) / threads;
  return static_cast<unsigned>(std::clamp<int64_t>(blocks, 1, 65536));
}

__device__ __forceinline__ int64_t thread_index() {
  return static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
}
__device__ __forceinline__ int64_t thread_count() { return static_cast<int64_t>(gridDim.x) * blockDim.x; }

// Note [Device index checks]: a kernel cannot throw, so an index out of range prints what was
// wrong and traps; the launch then fails with cudaErrorLaunchFailure at the next checked CUDA call
// (a sticky error: the process must exit), as PyTorch's device asserts do.
__device__ __forceinline__ void check_index(int64_t v, int64_t n, const char* op) {
  if (v < 0 || v >= n) {
    printf("%s: index %lld out of range [0, %lld)\n", op, static_cast<long long>(v), static_cast<long long>(n));
    __trap();
  }
}

}  // namespace mt::gpu
