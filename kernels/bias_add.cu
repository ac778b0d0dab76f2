// out[r, c] += bias[r / group_rows, c] over a flat grid-stride loop, in the accumulation type.
#include <algorithm>

#include "bias_add.h"
#include "device_utils.cuh"

namespace mt::gpu {

namespace {

template <typename T>
__global__ void add_bias_rows_kernel(T* __restrict__ out, const T* __restrict__ bias, int64_t n, int64_t cols,
                                     int64_t group_elems) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    out[i] = from_acc<T>(to_acc(out[i]) + to_acc(bias[(i / group_elems) * cols + i % cols]));
}

}  // namespace

template <typename T>
cudaError_t add_bias_rows(T* out, const T* bias, int64_t rows, int64_t cols, int64_t group_rows,
                          cudaStream_t stream) {
  int64_t n = rows * cols;
  if (n == 0 || group_rows <= 0) return cudaSuccess;
  int threads = 256;
  int64_t blocks = std::min<int64_t>((n + threads - 1) / threads, 65536);
  add_bias_rows_kernel<T><<<static_cast<unsigned>(blocks), threads, 0, stream>>>(out, bias, n, cols, group_rows * cols);
  return cudaGetLastError();
}

template cudaError_t add_bias_rows<float>(float*, const float*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t add_bias_rows<double>(double*, const double*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t add_bias_rows<__nv_bfloat16>(__nv_bfloat16*, const __nv_bfloat16*, int64_t, int64_t, int64_t, cudaStream_t);
template cudaError_t add_bias_rows<__half>(__half*, const __half*, int64_t, int64_t, int64_t, cudaStream_t);

}  // namespace mt::gpu
