// Row reductions and row scans on the GPU. Reductions use one warp per row for short rows, one
// 512-thread block per row for long ones, and two passes over chunks for a few very long rows;
// Max, Min and ArgMax start every lane from the row's first element, which reproduces the CPU's
// sequential results exactly (NaN handling included). Sums are tree-ordered, so float sums differ
// from the CPU's sequential ones only by rounding.
#include <limits>
#include <type_traits>

#include "device_utils.cuh"
#include "launch_utils.cuh"
#include "reduce.h"

namespace mt::gpu {

namespace {

constexpr unsigned kFullMask = 0xffffffffu;
constexpr int kReduceOpSum = 0, kReduceOpMax = 1, kReduceOpMin = 2, kReduceOpArgMax = 3,  // mt::ReduceOp
              kReduceOpSumSquares = 4;

template <typename T>
using red_acc_t = std::conditional_t<std::is_same_v<T, double>, double,
                                     std::conditional_t<std::is_integral_v<T>, int64_t, float>>;

template <typename T>
__device__ __forceinline__ red_acc_t<T> load_acc(const T& x) {
  return static_cast<red_acc_t<T>>(to_acc(x));
}

// Sum, Max, Min, SumSquares over values of type A.
template <typename T, int kOp>
struct ValueReducer {
  using In = T;
  using Acc = red_acc_t<T>;
  // The accumulator every lane starts from: 0 for sums, the row's first element for Max and Min
  // (an identity for them, and the CPU's own start, which gives its NaN behaviour).
  __device__ static Acc init(const T* row) {
    if constexpr (kOp == kReduceOpMax || kOp == kReduceOpMin) return load_acc(row[0]);
    else return Acc(0);
  }
  // The same for a row of partial accumulators (second pass of a split reduction).
  __device__ static Acc partial_init(const Acc* partials) {
    if constexpr (kOp == kReduceOpMax || kOp == kReduceOpMin) return partials[0];
    else return Acc(0);
  }
  __device__ static Acc map(T x, int64_t) {
    Acc v = load_acc(x);
    if constexpr (kOp == kReduceOpSumSquares) return v * v;
    else return v;
  }
  __device__ static Acc combine(Acc a, Acc b) {
    if constexpr (kOp == kReduceOpMax) return b > a ? b : a;
    else if constexpr (kOp == kReduceOpMin) return b < a ? b : a;
    else return a + b;
  }
  __device__ static Acc shfl_xor(Acc a, int o) { return __shfl_xor_sync(kFullMask, a, o); }
  __device__ static T finish(Acc a) { return cast_to<T>(a); }
};

template <typename A>
struct ArgMaxAcc {
  A value;
  int64_t index;
};

// The first index of the maximum: a later element wins only when strictly greater.
template <typename T>
struct ArgMaxReducer {
  using In = T;
  using Acc = ArgMaxAcc<red_acc_t<T>>;
  __device__ static Acc init(const T* row) { return {load_acc(row[0]), 0}; }
  __device__ static Acc partial_init(const Acc* partials) { return partials[0]; }
  __device__ static Acc map(T x, int64_t j) { return {load_acc(x), j}; }
  __device__ static Acc combine(Acc a, Acc b) {
    return (b.value > a.value || (b.value == a.value && b.index < a.index)) ? b : a;
  }
  __device__ static Acc shfl_xor(Acc a, int o) {
    return {__shfl_xor_sync(kFullMask, a.value, o), __shfl_xor_sync(kFullMask, a.index, o)};
  }
  __device__ static int64_t finish(Acc a) { return a.index; }
};

// Combines the partial accumulators of R that the first pass of a split reduction wrote.
template <typename R>
struct PartialReducer {
  using In = typename R::Acc;
  using Acc = typename R::Acc;
  __device__ static Acc init(const Acc* partials) { return R::partial_init(partials); }
  __device__ static Acc map(Acc a, int64_t) { return a; }
  __device__ static Acc combine(Acc a, Acc b) { return R::combine(a, b); }
  __device__ static Acc shfl_xor(Acc a, int o) { return R::shfl_xor(a, o); }
  __device__ static auto finish(Acc a) { return R::finish(a); }
};

template <typename R>
__device__ __forceinline__ typename R::Acc warp_reduce(typename R::Acc a) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) a = R::combine(a, R::shfl_xor(a, o));
  return a;
}

// Reduces acc over a block of kBlock threads; the result is in thread 0. `identity` fills the
// unused lanes of the last step. Has barriers: every thread of the block must call it.
template <typename R, int kBlock>
__device__ __forceinline__ typename R::Acc block_reduce(typename R::Acc acc, typename R::Acc identity) {
  constexpr int kWarps = kBlock / 32;
  __shared__ typename R::Acc partial[kWarps];
  acc = warp_reduce<R>(acc);
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  if (lane == 0) partial[warp] = acc;
  __syncthreads();
  if (warp == 0) acc = warp_reduce<R>(lane < kWarps ? partial[lane] : identity);
  __syncthreads();  // partial may be rewritten by the caller's next round
  return acc;
}

constexpr int kBlockRowThreads = 512;

// kRowThreads = 32: one warp per row, kThreads / 32 rows per block; otherwise one block per row.
template <int kRowThreads, typename R, typename Out>
__global__ void reduce_rows_kernel(const typename R::In* in, Out* out, int64_t m, int64_t k) {
  using Acc = typename R::Acc;
  constexpr int kRowsPerBlock = kRowThreads == 32 ? kThreads / 32 : 1;
  int lane_in_row = threadIdx.x % kRowThreads;
  // Every thread of a block runs the same number of iterations (block_reduce has barriers).
  for (int64_t base = static_cast<int64_t>(blockIdx.x) * kRowsPerBlock; base < m;
       base += static_cast<int64_t>(gridDim.x) * kRowsPerBlock) {
    int64_t r = base + threadIdx.x / kRowThreads;
    bool active = r < m;
    const typename R::In* row = in + (active ? r : 0) * k;
    Acc acc = active ? R::init(row) : Acc{};
    if (active)
      for (int64_t j = lane_in_row; j < k; j += kRowThreads) acc = R::combine(acc, R::map(row[j], j));
    if constexpr (kRowThreads == 32) acc = warp_reduce<R>(acc);
    else acc = block_reduce<R, kRowThreads>(acc, R::init(row));
    if (active && lane_in_row == 0) out[r] = R::finish(acc);
  }
}

template <typename R, typename Out>
cudaError_t launch_reduce(const typename R::In* in, Out* out, int64_t m, int64_t k, cudaStream_t stream) {
  if (k <= 1024) {
    reduce_rows_kernel<32, R><<<grid_for(m, kThreads / 32), kThreads, 0, stream>>>(in, out, m, k);
  } else {
    reduce_rows_kernel<kBlockRowThreads, R><<<grid_for(m, 1), kBlockRowThreads, 0, stream>>>(in, out, m, k);
  }
  return cudaGetLastError();
}

// Split reductions: a few long rows are cut into chunks reduced by separate blocks (first pass,
// partials (m, chunks) in scratch), then the partials are combined per row. The chunking depends
// only on (m, k), so results are deterministic.
constexpr int64_t kSplitChunk = 16 * kBlockRowThreads;  // elements per block in the first pass

int64_t split_chunks(int64_t m, int64_t k) {
  if (m >= 256 || k < 4 * kSplitChunk) return 0;
  return (k + kSplitChunk - 1) / kSplitChunk;
}

template <typename R>
__global__ void reduce_partials_kernel(const typename R::In* in, typename R::Acc* partials, int64_t k) {
  using Acc = typename R::Acc;
  int64_t r = blockIdx.y, c = blockIdx.x;
  const typename R::In* row = in + r * k;
  int64_t hi = min(k, (c + 1) * kSplitChunk);
  Acc acc = R::init(row);
  for (int64_t j = c * kSplitChunk + threadIdx.x; j < hi; j += kBlockRowThreads) acc = R::combine(acc, R::map(row[j], j));
  acc = block_reduce<R, kBlockRowThreads>(acc, R::init(row));
  if (threadIdx.x == 0) partials[r * gridDim.x + c] = acc;
}

template <typename R, typename Out>
cudaError_t reduce_maybe_split(const typename R::In* in, Out* out, int64_t m, int64_t k, void* scratch,
                               cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  int64_t chunks = split_chunks(m, k);
  if (chunks == 0) return launch_reduce<R>(in, out, m, k, stream);
  if (scratch == nullptr) return cudaErrorInvalidValue;
  auto* partials = static_cast<typename R::Acc*>(scratch);
  dim3 grid(static_cast<unsigned>(chunks), static_cast<unsigned>(m));
  reduce_partials_kernel<R><<<grid, kBlockRowThreads, 0, stream>>>(in, partials, k);
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) return err;
  return launch_reduce<PartialReducer<R>>(partials, out, m, chunks, stream);
}

template <typename T>
__global__ void zero_rows_kernel(T* out, int64_t m) {
  for (int64_t i = thread_index(); i < m; i += thread_count()) out[i] = cast_to<T>(0);
}

// One block per row; each thread scans kScanItems consecutive elements of a chunk, and the block scans
// the threads' totals (warp shuffles, then the warps' totals), carrying across chunks.
constexpr int kScanItems = 4;

template <typename T>
__global__ void cumsum_rows_kernel(const T* in, T* out, int64_t m, int64_t n) {
  using A = red_acc_t<T>;
  __shared__ A warp_totals[32];
  int lane = threadIdx.x % 32, warp = threadIdx.x / 32, nwarps = blockDim.x / 32;
  for (int64_t r = blockIdx.x; r < m; r += gridDim.x) {
    const T* x = in + r * n;
    T* y = out + r * n;
    A carry = 0;
    for (int64_t base = 0; base < n; base += static_cast<int64_t>(blockDim.x) * kScanItems) {
      int64_t start = base + static_cast<int64_t>(threadIdx.x) * kScanItems;
      A v[kScanItems];
      A local = 0;
#pragma unroll
      for (int i = 0; i < kScanItems; ++i) {
        if (start + i < n) local += load_acc(x[start + i]);
        v[i] = local;
      }
      A t = local;  // inclusive scan of the threads' totals within the warp
#pragma unroll
      for (int o = 1; o < 32; o <<= 1) {
        A u = __shfl_up_sync(kFullMask, t, o);
        if (lane >= o) t += u;
      }
      if (lane == 31) warp_totals[warp] = t;
      __syncthreads();
      if (warp == 0) {
        A w = lane < nwarps ? warp_totals[lane] : A(0);
#pragma unroll
        for (int o = 1; o < 32; o <<= 1) {
          A u = __shfl_up_sync(kFullMask, w, o);
          if (lane >= o) w += u;
        }
        if (lane < nwarps) warp_totals[lane] = w;
      }
      __syncthreads();
      A prefix = carry + (warp > 0 ? warp_totals[warp - 1] : A(0)) + (t - local);
#pragma unroll
      for (int i = 0; i < kScanItems; ++i)
        if (start + i < n) y[start + i] = cast_to<T>(prefix + v[i]);
      carry += warp_totals[nwarps - 1];
      __syncthreads();  // warp_totals is rewritten by the next chunk
    }
  }
}

}  // namespace

template <typename T>
size_t reduce_rows_scratch_bytes(int op, int64_t m, int64_t k) {
  size_t acc_bytes = op == kReduceOpArgMax ? sizeof(ArgMaxAcc<red_acc_t<T>>) : sizeof(red_acc_t<T>);
  return static_cast<size_t>(m * split_chunks(m, k)) * acc_bytes;
}

template <typename T>
cudaError_t reduce_rows(int op, const T* in, T* out, int64_t m, int64_t k, void* scratch, cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  if (k == 0) {
    if (op != kReduceOpSum && op != kReduceOpSumSquares) return cudaErrorInvalidValue;
    zero_rows_kernel<<<grid_for(m), kThreads, 0, stream>>>(out, m);
    return cudaGetLastError();
  }
  switch (op) {
    case kReduceOpSum: return reduce_maybe_split<ValueReducer<T, kReduceOpSum>>(in, out, m, k, scratch, stream);
    case kReduceOpMax: return reduce_maybe_split<ValueReducer<T, kReduceOpMax>>(in, out, m, k, scratch, stream);
    case kReduceOpMin: return reduce_maybe_split<ValueReducer<T, kReduceOpMin>>(in, out, m, k, scratch, stream);
    case kReduceOpSumSquares:
      return reduce_maybe_split<ValueReducer<T, kReduceOpSumSquares>>(in, out, m, k, scratch, stream);
  }
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t argmax_rows(const T* in, int64_t* out, int64_t m, int64_t k, void* scratch, cudaStream_t stream) {
  if (m == 0) return cudaSuccess;
  if (k == 0) return cudaErrorInvalidValue;
  return reduce_maybe_split<ArgMaxReducer<T>>(in, out, m, k, scratch, stream);
}

template <typename T>
cudaError_t cumsum_rows(const T* in, T* out, int64_t m, int64_t n, cudaStream_t stream) {
  if (m == 0 || n == 0) return cudaSuccess;
  int64_t per_row = (n + kScanItems - 1) / kScanItems;
  int threads = static_cast<int>(std::clamp<int64_t>((per_row + 31) / 32 * 32, 32, 512));
  cumsum_rows_kernel<<<grid_for(m, 1), threads, 0, stream>>>(in, out, m, n);
  return cudaGetLastError();
}

#define MT_INST_REDUCE(T)                                                                         \
  template size_t reduce_rows_scratch_bytes<T>(int, int64_t, int64_t);                            \
  template cudaError_t reduce_rows<T>(int, const T*, T*, int64_t, int64_t, void*, cudaStream_t);  \
  template cudaError_t argmax_rows<T>(const T*, int64_t*, int64_t, int64_t, void*, cudaStream_t); \
  template cudaError_t cumsum_rows<T>(const T*, T*, int64_t, int64_t, cudaStream_t);
MT_INST_REDUCE(float)
MT_INST_REDUCE(double)
MT_INST_REDUCE(__nv_bfloat16)
MT_INST_REDUCE(__half)
MT_INST_REDUCE(int32_t)
MT_INST_REDUCE(int64_t)

}  // namespace mt::gpu
