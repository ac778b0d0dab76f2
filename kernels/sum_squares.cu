// Sums of squares of many tensors: tensors go in batches of kBatch by value in the kernel parameters,
// each tensor gets blocks in proportion to its size (at most kMaxBlocks), each block writes one partial,
// and a second launch sums each tensor's partials in order.
#include <algorithm>

#include "device_utils.cuh"
#include "launch_utils.cuh"
#include "sum_squares.h"

namespace mt::gpu {

namespace {

constexpr int kBatch = 64;
constexpr int64_t kElementsPerBlock = 16384;
constexpr int64_t kMaxBlocks = 512;

// Tensor i of a batch owns blocks [first_block[i], first_block[i + 1]) and their partials.
struct Bounds {
  int64_t first_block[kBatch + 1];
};

template <typename T>
struct Batch {
  const T* ptr[kBatch];
  int64_t numel[kBatch];
  Bounds bounds;
};

int64_t blocks_for(int64_t numel) {
  return std::clamp<int64_t>((numel + kElementsPerBlock - 1) / kElementsPerBlock, 1, kMaxBlocks);
}

template <typename T, typename A>
__global__ void __launch_bounds__(kThreads) partials_kernel(Batch<T> batch, int count, A* partials) {
  __shared__ A scratch[32];
  int64_t block = blockIdx.x;
  int t = 0;
  const int64_t* first_block = batch.bounds.first_block;
  while (t + 1 < count && first_block[t + 1] <= block) ++t;
  int64_t first = first_block[t], blocks = first_block[t + 1] - first, n = batch.numel[t];
  const T* p = batch.ptr[t];
  A acc = 0;
  for (int64_t i = (block - first) * blockDim.x + threadIdx.x; i < n; i += blocks * blockDim.x) {
    A v = static_cast<A>(to_acc(p[i]));
    acc = fma_acc(v, v, acc);
  }
  acc = row_allreduce(acc, SumOp{}, scratch);
  if (threadIdx.x == 0) partials[block] = acc;
}

template <typename A>
__global__ void finish_kernel(const A* partials, Bounds bounds, int count, A* out) {
  int t = threadIdx.x;
  if (t >= count) return;
  A sum = 0;
  for (int64_t b = bounds.first_block[t]; b < bounds.first_block[t + 1]; ++b) sum += partials[b];
  out[t] = sum;
}

}  // namespace

int64_t sum_squares_scratch(const int64_t* numel, int64_t n) {
  int64_t most = 0;
  for (int64_t lo = 0; lo < n; lo += kBatch) {
    int64_t blocks = 0;
    for (int64_t i = lo; i < std::min(n, lo + kBatch); ++i) blocks += blocks_for(numel[i]);
    most = std::max(most, blocks);
  }
  return most;
}

template <typename T, typename A>
cudaError_t sum_squares_many(const T* const* tensors, const int64_t* numel, int64_t n, A* out, A* scratch,
                             cudaStream_t stream) {
  for (int64_t lo = 0; lo < n; lo += kBatch) {
    int count = static_cast<int>(std::min<int64_t>(kBatch, n - lo));
    Batch<T> batch{};
    int64_t* first_block = batch.bounds.first_block;
    for (int i = 0; i < count; ++i) {
      batch.ptr[i] = tensors[lo + i];
      batch.numel[i] = numel[lo + i];
      first_block[i + 1] = first_block[i] + blocks_for(numel[lo + i]);
    }
    // Every batch's partials reuse `scratch`: launches on one stream run in order.
    partials_kernel<T, A><<<static_cast<unsigned>(first_block[count]), kThreads, 0, stream>>>(batch, count, scratch);
    finish_kernel<A><<<1, kBatch, 0, stream>>>(scratch, batch.bounds, count, out + lo);
  }
  return cudaGetLastError();
}

template cudaError_t sum_squares_many<float, float>(const float* const*, const int64_t*, int64_t, float*, float*,
                                                    cudaStream_t);
template cudaError_t sum_squares_many<double, double>(const double* const*, const int64_t*, int64_t, double*, double*,
                                                      cudaStream_t);
template cudaError_t sum_squares_many<__nv_bfloat16, float>(const __nv_bfloat16* const*, const int64_t*, int64_t,
                                                            float*, float*, cudaStream_t);
template cudaError_t sum_squares_many<__half, float>(const __half* const*, const int64_t*, int64_t, float*, float*,
                                                     cudaStream_t);

}  // namespace mt::gpu
