// Indexing kernels on the GPU: index_select and gather move raw element bits (widest aligned unit
// for whole rows); index_add sorts the indices (stable radix sort) and sums each destination row's
// sources in index order, so it is deterministic; scatter_add accumulates with atomicAdd (bf16 and
// f16 atomics need sm_80 / sm_70); topk is a warp per row that selects the k best in turn, or for
// large k one radix sort of (row, value) keys (Note [Top-k by sorting]).
#include <cub/device/device_radix_sort.cuh>

#include <cmath>
#include <type_traits>

#include "device_utils.cuh"
#include "indexing.h"
#include "launch_utils.cuh"

namespace mt::gpu {

namespace {

template <typename U>
__global__ void index_select_kernel(const U* in, U* out, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                                    int64_t units) {
  int64_t total = outer * m * units;
  for (int64_t e = thread_index(); e < total; e += thread_count()) {
    int64_t row = e / units, c = e - row * units;
    int64_t o = row / m, j = row - o * m;
    int64_t src_row = index[j];
    check_index(src_row, n, "index_select");
    out[e] = in[(o * n + src_row) * units + c];
  }
}

template <typename U>
cudaError_t launch_index_select(const void* in, void* out, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                                int64_t row_bytes, cudaStream_t stream) {
  int64_t units = row_bytes / static_cast<int64_t>(sizeof(U));
  index_select_kernel<<<grid_for(outer * m * units), kThreads, 0, stream>>>(
      static_cast<const U*>(in), static_cast<U*>(out), index, outer, n, m, units);
  return cudaGetLastError();
}

__device__ __forceinline__ void atomic_add(float* p, float v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(double* p, double v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(__nv_bfloat16* p, __nv_bfloat16 v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(__half* p, __half v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int32_t* p, int32_t v) { atomicAdd(p, v); }
__device__ __forceinline__ void atomic_add(int64_t* p, int64_t v) {  // two's complement: unsigned add is signed add
  atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
}

// Note [Deterministic index_add]: embedding and MoE backward run through index_add, and bit-exact
// resume needs them to give the same bits every run. Atomics add duplicates in a racy order, so
// instead the (index, position) pairs are radix-sorted (stable: equal indices keep position order)
// and one block per run of equal indices sums its source rows in that order, in f32 (f64, i64),
// adding the total to the destination once.
__global__ void iota_kernel(int32_t* v, int64_t m) {
  for (int64_t e = thread_index(); e < m; e += thread_count()) v[e] = static_cast<int32_t>(e);
}

template <typename T>
__global__ void index_add_sorted_kernel(T* out, const T* src, const int64_t* sorted_index, const int32_t* order,
                                        int64_t outer, int64_t n, int64_t m, int64_t inner) {
  using A = std::conditional_t<std::is_integral_v<T>, int64_t, acc_t<T>>;
  for (int64_t item = blockIdx.x; item < outer * m; item += gridDim.x) {
    int64_t o = item / m, p = item - o * m;
    int64_t row = sorted_index[p];
    if (p > 0 && sorted_index[p - 1] == row) continue;  // not the first of its run
    check_index(row, n, "index_add");
    for (int64_t i = threadIdx.x; i < inner; i += blockDim.x) {
      A acc = 0;
      for (int64_t q = p; q < m && sorted_index[q] == row; ++q)
        acc += static_cast<A>(to_acc(src[(o * m + order[q]) * inner + i]));
      T* dst = &out[(o * n + row) * inner + i];
      *dst = from_acc<T>(static_cast<acc_t<T>>(static_cast<A>(to_acc(*dst)) + acc));
    }
  }
}

struct IndexAddScratch {
  int64_t* sorted_index;
  int32_t* order_in;
  int32_t* order;
  void* sort_temp;
  size_t sort_temp_bytes;
};

size_t align_up(size_t bytes) { return (bytes + 255) / 256 * 256; }

int key_bits(int64_t n) {
  int bits = 1;
  while (bits < 63 && (int64_t{1} << bits) < n) ++bits;
  return bits;
}

size_t sort_temp_bytes(int64_t m, int64_t n) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const int64_t*>(nullptr), static_cast<int64_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<int>(m), 0, key_bits(n));
  return bytes;
}

IndexAddScratch carve(void* workspace, int64_t m, int64_t n) {
  char* p = static_cast<char*>(workspace);
  IndexAddScratch s;
  s.sorted_index = reinterpret_cast<int64_t*>(p);
  p += align_up(m * sizeof(int64_t));
  s.order_in = reinterpret_cast<int32_t*>(p);
  p += align_up(m * sizeof(int32_t));
  s.order = reinterpret_cast<int32_t*>(p);
  p += align_up(m * sizeof(int32_t));
  s.sort_temp = p;
  s.sort_temp_bytes = sort_temp_bytes(m, n);
  return s;
}

// Element offset of index element e in the addressed tensor.
__device__ __forceinline__ int64_t gather_offset(const GatherLayout& l, int64_t e, const int64_t* index,
                                                 const char* op) {
  int64_t rem = e, off = 0;
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d < l.ndim) {
      int64_t c = rem % l.index_size[d];
      rem /= l.index_size[d];
      if (d == l.dim) {
        c = index[e];
        check_index(c, l.dim_size, op);
      }
      off += c * l.stride[d];
    }
  }
  return off;
}

template <typename U>
__global__ void gather_kernel(const U* in, U* out, const int64_t* index, GatherLayout layout, int64_t numel) {
  for (int64_t e = thread_index(); e < numel; e += thread_count()) out[e] = in[gather_offset(layout, e, index, "gather")];
}

template <typename T>
__global__ void scatter_add_kernel(T* out, const T* src, const int64_t* index, GatherLayout layout, int64_t numel) {
  for (int64_t e = thread_index(); e < numel; e += thread_count())
    atomic_add(&out[gather_offset(layout, e, index, "scatter_add")], src[e]);
}

// Top-k order: a comes before b when greater, or equal with the lower index; NaN is the greatest.
template <typename K>
__device__ __forceinline__ bool comes_before(K a, int64_t ia, K b, int64_t ib) {
  if constexpr (std::is_floating_point_v<K>) {
    bool na = isnan(a), nb = isnan(b);
    if (na || nb) return na && (!nb || ia < ib);
  }
  return a > b || (a == b && ia < ib);
}

constexpr int kTopkRowsPerBlock = 4;

template <typename T>
__global__ void topk_kernel(const T* in, T* values, int64_t* indices, int64_t m, int64_t n, int64_t k) {
  using K = acc_t<T>;
  constexpr unsigned kFull = 0xffffffffu;
  int lane = threadIdx.x % 32;
  // All lanes of a warp share r, so the shuffles below always run with the whole warp.
  for (int64_t r = static_cast<int64_t>(blockIdx.x) * kTopkRowsPerBlock + threadIdx.x / 32; r < m;
       r += static_cast<int64_t>(gridDim.x) * kTopkRowsPerBlock) {
    const T* row = in + r * n;
    K prev_v{};
    int64_t prev_i = -1;
    for (int64_t j = 0; j < k; ++j) {
      // The first element (in top-k order) among those after the previous pick.
      K best_v{};
      int64_t best_i = -1;
      for (int64_t c = lane; c < n; c += 32) {
        K v = to_acc(row[c]);
        if (prev_i >= 0 && !comes_before(prev_v, prev_i, v, c)) continue;
        if (best_i < 0 || comes_before(v, c, best_v, best_i)) {
          best_v = v;
          best_i = c;
        }
      }
#pragma unroll
      for (int o = 16; o > 0; o >>= 1) {
        K ov = __shfl_xor_sync(kFull, best_v, o);
        int64_t oi = __shfl_xor_sync(kFull, best_i, o);
        if (oi >= 0 && (best_i < 0 || comes_before(ov, oi, best_v, best_i))) {
          best_v = ov;
          best_i = oi;
        }
      }
      if (lane == 0) {  // k <= n, so some element always remains
        values[r * k + j] = row[best_i];
        indices[r * k + j] = best_i;
      }
      prev_v = best_v;
      prev_i = best_i;
    }
  }
}

// Note [Top-k by sorting]: the warp-per-row kernel costs k passes over the row, fine for a router's
// k <= 8 but 180 ms a call for random token selection's k = capacity = 2048 of 16384 tokens (8
// experts, H100). For k > kTopkSortAbove and values of at most 32 bits, every element gets the 64-bit
// key (row << 32) | rank32(value), rank32 ascending as the value descends (NaN first, -0 as +0, as
// the warp kernel orders them), and one stable radix sort of (key, column) pairs leaves each row in
// top-k order, equal values by lower column; the first k of each row are copied out.
constexpr int64_t kTopkSortAbove = 32;

template <typename T>
bool topk_sorts(int64_t m, int64_t n, int64_t k) {
  return k > kTopkSortAbove && sizeof(T) <= 4 && m * n <= INT32_MAX;
}

size_t topk_sort_temp_bytes(int64_t m, int64_t n) {
  size_t bytes = 0;
  cub::DeviceRadixSort::SortPairs(nullptr, bytes, static_cast<const uint64_t*>(nullptr), static_cast<uint64_t*>(nullptr),
                                  static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
                                  static_cast<int>(m * n), 0, 32 + key_bits(m));
  return bytes;
}

template <typename T>
__device__ __forceinline__ uint32_t descending_rank(T x) {
  if constexpr (std::is_integral_v<T>) {
    return ~(static_cast<uint32_t>(x) ^ 0x80000000u);
  } else {
    float v = static_cast<float>(x);
    if (isnan(v)) return 0u;
    if (v == 0.0f) v = 0.0f;  // -0 ranks with +0
    uint32_t bits = __float_as_uint(v);
    uint32_t ascending = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
    return ~ascending;
  }
}

template <typename T>
__global__ void topk_keys_kernel(const T* in, uint64_t* keys, int32_t* columns, int64_t m, int64_t n) {
  for (int64_t e = thread_index(); e < m * n; e += thread_count()) {
    int64_t r = e / n;
    keys[e] = (static_cast<uint64_t>(r) << 32) | descending_rank(in[e]);
    columns[e] = static_cast<int32_t>(e - r * n);
  }
}

template <typename T>
__global__ void topk_take_kernel(const T* in, const int32_t* sorted_columns, T* values, int64_t* indices, int64_t m,
                                 int64_t n, int64_t k) {
  for (int64_t e = thread_index(); e < m * k; e += thread_count()) {
    int64_t r = e / k, j = e - r * k;
    int32_t c = sorted_columns[r * n + j];
    values[e] = in[r * n + c];
    indices[e] = c;
  }
}

}  // namespace

cudaError_t index_select(const void* in, void* out, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                         int64_t inner, size_t element_size, cudaStream_t stream) {
  int64_t row_bytes = inner * static_cast<int64_t>(element_size);
  if (outer * m * row_bytes == 0) return cudaSuccess;
  auto fits = [&](size_t w) {
    return row_bytes % static_cast<int64_t>(w) == 0 && is_aligned(in, w) && is_aligned(out, w);
  };
  if (fits(16)) return launch_index_select<uint4>(in, out, index, outer, n, m, row_bytes, stream);
  if (fits(8)) return launch_index_select<uint64_t>(in, out, index, outer, n, m, row_bytes, stream);
  if (fits(4)) return launch_index_select<uint32_t>(in, out, index, outer, n, m, row_bytes, stream);
  if (fits(2)) return launch_index_select<uint16_t>(in, out, index, outer, n, m, row_bytes, stream);
  return launch_index_select<uint8_t>(in, out, index, outer, n, m, row_bytes, stream);
}

size_t index_add_workspace_bytes(int64_t m, int64_t n) {
  return align_up(m * sizeof(int64_t)) + 2 * align_up(m * sizeof(int32_t)) + align_up(sort_temp_bytes(m, n));
}

template <typename T>
cudaError_t index_add(T* out, const T* src, const int64_t* index, int64_t outer, int64_t n, int64_t m, int64_t inner,
                      void* workspace, cudaStream_t stream) {
  if (outer * m * inner == 0) return cudaSuccess;
  if (m > INT32_MAX) return cudaErrorInvalidValue;
  IndexAddScratch s = carve(workspace, m, n);
  iota_kernel<<<grid_for(m), kThreads, 0, stream>>>(s.order_in, m);
  cudaError_t err = cub::DeviceRadixSort::SortPairs(s.sort_temp, s.sort_temp_bytes, index, s.sorted_index, s.order_in,
                                                    s.order, static_cast<int>(m), 0, key_bits(n), stream);
  if (err != cudaSuccess) return err;
  int threads = inner >= 256 ? 256 : inner >= 64 ? 128 : 32;
  int64_t blocks = std::min<int64_t>(outer * m, 65535 * 8);
  index_add_sorted_kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(out, src, s.sorted_index, s.order,
                                                                                outer, n, m, inner);
  return cudaGetLastError();
}

cudaError_t gather(const void* in, void* out, const int64_t* index, const GatherLayout& layout, int64_t numel,
                   size_t element_size, cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  unsigned grid = grid_for(numel);
  switch (element_size) {
    case 1:
      gather_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint8_t*>(in), static_cast<uint8_t*>(out), index,
                                                   layout, numel);
      break;
    case 2:
      gather_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint16_t*>(in), static_cast<uint16_t*>(out), index,
                                                   layout, numel);
      break;
    case 4:
      gather_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint32_t*>(in), static_cast<uint32_t*>(out), index,
                                                   layout, numel);
      break;
    case 8:
      gather_kernel<<<grid, kThreads, 0, stream>>>(static_cast<const uint64_t*>(in), static_cast<uint64_t*>(out), index,
                                                   layout, numel);
      break;
    default: return cudaErrorInvalidValue;
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t scatter_add(T* out, const T* src, const int64_t* index, const GatherLayout& layout, int64_t numel,
                        cudaStream_t stream) {
  if (numel == 0) return cudaSuccess;
  scatter_add_kernel<<<grid_for(numel), kThreads, 0, stream>>>(out, src, index, layout, numel);
  return cudaGetLastError();
}

template <typename T>
size_t topk_workspace_bytes(int64_t m, int64_t n, int64_t k) {
  if (!topk_sorts<T>(m, n, k)) return 0;
  return 2 * align_up(m * n * sizeof(uint64_t)) + 2 * align_up(m * n * sizeof(int32_t)) + topk_sort_temp_bytes(m, n);
}

template <typename T>
cudaError_t topk(const T* in, T* values, int64_t* indices, int64_t m, int64_t n, int64_t k, void* workspace,
                 cudaStream_t stream) {
  if (m == 0 || k == 0) return cudaSuccess;
  if (k > n) return cudaErrorInvalidValue;
  if (!topk_sorts<T>(m, n, k)) {
    topk_kernel<<<grid_for(m, kTopkRowsPerBlock), 32 * kTopkRowsPerBlock, 0, stream>>>(in, values, indices, m, n, k);
    return cudaGetLastError();
  }
  const int64_t numel = m * n;
  char* p = static_cast<char*>(workspace);
  auto take = [&p](size_t bytes) {
    char* at = p;
    p += align_up(bytes);
    return at;
  };
  auto* keys_in = reinterpret_cast<uint64_t*>(take(numel * sizeof(uint64_t)));
  auto* keys_out = reinterpret_cast<uint64_t*>(take(numel * sizeof(uint64_t)));
  auto* columns_in = reinterpret_cast<int32_t*>(take(numel * sizeof(int32_t)));
  auto* columns_out = reinterpret_cast<int32_t*>(take(numel * sizeof(int32_t)));
  size_t temp_bytes = topk_sort_temp_bytes(m, n);
  topk_keys_kernel<<<grid_for(numel), kThreads, 0, stream>>>(in, keys_in, columns_in, m, n);
  cudaError_t err = cub::DeviceRadixSort::SortPairs(p, temp_bytes, keys_in, keys_out, columns_in, columns_out,
                                                    static_cast<int>(numel), 0, 32 + key_bits(m), stream);
  if (err != cudaSuccess) return err;
  topk_take_kernel<<<grid_for(m * k), kThreads, 0, stream>>>(in, columns_out, values, indices, m, n, k);
  return cudaGetLastError();
}

#define MT_INST_ACCUMULATE(T)                                                                                   \
  template cudaError_t index_add<T>(T*, const T*, const int64_t*, int64_t, int64_t, int64_t, int64_t, void*, cudaStream_t); \
  template cudaError_t scatter_add<T>(T*, const T*, const int64_t*, const GatherLayout&, int64_t, cudaStream_t);
#define MT_INST_TOPK(T)                                                                   \
  template size_t topk_workspace_bytes<T>(int64_t, int64_t, int64_t);                     \
  template cudaError_t topk<T>(const T*, T*, int64_t*, int64_t, int64_t, int64_t, void*, cudaStream_t);
#define MT_INST_INDEXING(X) X(float) X(double) X(__nv_bfloat16) X(__half) X(int32_t) X(int64_t)
MT_INST_INDEXING(MT_INST_ACCUMULATE)
MT_INST_INDEXING(MT_INST_TOPK)
MT_INST_TOPK(bool)

}  // namespace mt::gpu
