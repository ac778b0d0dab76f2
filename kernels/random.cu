// Philox random fills on the GPU. Each element calls the same host+device formulas as the CPU
// kernels (mt/math/philox.h, mt/math/scalar_math.h) and the double arithmetic is written with
// unfused _rn intrinsics, so uniform draws are bit-identical to the CPU's.
#include "device_utils.cuh"
#include "launch_utils.cuh"
#include "mt/math/scalar_math.h"
#include "random.h"

namespace mt::gpu {

namespace {

template <typename T>
__global__ void uniform_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double lo,
                               double hi) {
  if (offset_base) offset += *offset_base;
  double range = hi - lo;
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    float u = philox_uniform(seed, offset + static_cast<uint64_t>(i));
    out[i] = cast_to<T>(__dadd_rn(lo, __dmul_rn(range, static_cast<double>(u))));
  }
}

template <typename T>
__global__ void normal_kernel(T* out, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double mean,
                              double std) {
  if (offset_base) offset += *offset_base;
  for (int64_t i = thread_index(); i < n; i += thread_count()) {
    float z = math::philox_normal(seed, offset, static_cast<uint64_t>(i));
    out[i] = cast_to<T>(__dadd_rn(mean, __dmul_rn(std, static_cast<double>(z))));
  }
}

}  // namespace

template <typename T>
cudaError_t uniform(T* out, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double lo, double hi,
                    cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  uniform_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, offset, offset_base, lo, hi);
  return cudaGetLastError();
}

template <typename T>
cudaError_t normal(T* out, int64_t n, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double mean,
                   double std, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  normal_kernel<<<grid_for(n), kThreads, 0, stream>>>(out, n, seed, offset, offset_base, mean, std);
  return cudaGetLastError();
}

#define MT_INST_RANDOM(T)                                                                              \
  template cudaError_t uniform<T>(T*, int64_t, uint64_t, uint64_t, const uint64_t*, double, double, cudaStream_t); \
  template cudaError_t normal<T>(T*, int64_t, uint64_t, uint64_t, const uint64_t*, double, double, cudaStream_t);
MT_INST_RANDOM(float)
MT_INST_RANDOM(double)
MT_INST_RANDOM(__nv_bfloat16)
MT_INST_RANDOM(__half)

}  // namespace mt::gpu
