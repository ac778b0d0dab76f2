// Dropout: each thread draws one Philox4x32 counter and uses its four numbers for the four elements
// whose stream indices share that counter, whatever the offset's alignment.
#include "device_utils.cuh"
#include "dropout.h"
#include "mt/math/philox.h"

namespace mt::gpu {

namespace {

template <typename T>
__global__ void dropout_kernel(const T* __restrict__ in, T* __restrict__ out, bool* __restrict__ mask, int64_t n,
                               double p, acc_t<T> scale, uint64_t seed, uint64_t offset,
                               const uint64_t* __restrict__ offset_base, uint64_t counters) {
  using A = acc_t<T>;
  if (offset_base) offset += *offset_base;  // a multiple of 4: `counters` holds
  uint64_t first = offset >> 2;
  for (uint64_t c = static_cast<uint64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < counters;
       c += static_cast<uint64_t>(gridDim.x) * blockDim.x) {
    Philox4 r = philox4x32(seed, first + c);
#pragma unroll
    for (int lane = 0; lane < 4; ++lane) {
      uint64_t stream_index = (first + c) * 4 + lane;
      if (stream_index < offset) continue;
      uint64_t i = stream_index - offset;
      if (i >= static_cast<uint64_t>(n)) break;
      float u = static_cast<float>(r.v[lane] >> 8) * (1.0f / 16777216.0f);  // philox_uniform, as on the CPU
      bool keep = static_cast<double>(u) >= p;  // compared in double, as `float >= double` on the CPU
      mask[i] = keep;
      out[i] = from_acc<T>(keep ? to_acc(in[i]) * scale : A(0));
    }
  }
}

}  // namespace

template <typename T>
cudaError_t dropout_forward(const T* in, T* out, bool* mask, int64_t n, double p, uint64_t seed, uint64_t offset,
                            const uint64_t* offset_base, cudaStream_t stream) {
  if (n == 0) return cudaSuccess;
  using A = acc_t<T>;
  uint64_t counters = ((offset & 3) + static_cast<uint64_t>(n) + 3) / 4;
  A scale = p < 1.0 ? static_cast<A>(1.0 / (1.0 - p)) : A(0);
  int threads = 256;
  uint64_t blocks = (counters + threads - 1) / threads;
  if (blocks > 65536) blocks = 65536;
  dropout_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(in, out, mask, n, p,
                                                                          scale, seed, offset, offset_base,
                                                                          counters);
  return cudaGetLastError();
}

#define MT_INST_DROPOUT(T)                                                                                 \
  template cudaError_t dropout_forward<T>(const T*, T*, bool*, int64_t, double, uint64_t, uint64_t, const uint64_t*, \
                                          cudaStream_t);
MT_INST_DROPOUT(float)
MT_INST_DROPOUT(double)
MT_INST_DROPOUT(__nv_bfloat16)
MT_INST_DROPOUT(__half)
#undef MT_INST_DROPOUT

}  // namespace mt::gpu
