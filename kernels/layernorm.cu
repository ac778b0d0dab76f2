// LayerNorm kernels. Forward: a warp or block per row, two passes for mean and variance (numerically
// like the CPU reference), one writing pass. Backward: rows split into contiguous groups; each group
// writes dx and its own column partials of dw/db (each column owned by one thread, so no atomics),
// then a second kernel sums the partials over groups in a fixed order: bit-reproducible runs.
#include <algorithm>

#include "device_utils.cuh"
#include "layernorm.h"
#include "row_launch.cuh"

namespace mt::gpukernels {

namespace {

constexpr int64_t kMaxGroups = 1024;
constexpr int64_t kMinGroups = 128;
constexpr size_t kSmemPartialLimit = 40 * 1024;  // under the 48 KiB default with the static scratch

template <typename T, typename S, int V>
__global__ void layernorm_forward_kernel(T* __restrict__ y, S* __restrict__ mean_out, S* __restrict__ rstd_out,
                                         const T* __restrict__ x, const T* __restrict__ w, const T* __restrict__ b,
                                         int64_t rows, int64_t cols, double eps) {
  using A = acc_t<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  const T* xr = x + (active ? row : 0) * cols;
  int64_t packs = cols / V;
  A s = 0;
  if (active)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> v = load_pack<T, V>(xr + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) s += to_acc(v.v[j]);
    }
  A mean = row_allreduce(s, SumOp{}, scratch) / static_cast<A>(cols);
  A q = 0;
  if (active)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> v = load_pack<T, V>(xr + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A d = to_acc(v.v[j]) - mean;
        q += d * d;
      }
    }
  A var = row_allreduce(q, SumOp{}, scratch) / static_cast<A>(cols);
  if (!active) return;
  A rstd = A(1) / sqrt_acc(var + static_cast<A>(eps));
  if (threadIdx.x == 0) {
    mean_out[row] = static_cast<S>(mean);
    rstd_out[row] = static_cast<S>(rstd);
  }
  T* yr = y + row * cols;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    Pack<T, V> v = load_pack<T, V>(xr + p * V), wv = load_pack<T, V>(w + p * V), r;
    Pack<T, V> bv;
    if (b) bv = load_pack<T, V>(b + p * V);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A o = (to_acc(v.v[j]) - mean) * rstd * to_acc(wv.v[j]);
      if (b) o += to_acc(bv.v[j]);
      r.v[j] = from_acc<T>(o);
    }
    store_pack<T, V>(yr + p * V, r);
  }
}

// One "group" per (blockIdx.x, threadIdx.y): rows [group * rows_per_group, ...). Its column partials
// (dw then db, 2 * cols values) live in shared memory when they fit, else directly in `partial`.
template <typename T, typename S, int V>
__global__ void layernorm_backward_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ x,
                                          const T* __restrict__ w, const S* __restrict__ mean_in,
                                          const S* __restrict__ rstd_in, int64_t rows, int64_t cols,
                                          int64_t rows_per_group, acc_t<T>* __restrict__ partial, bool smem_partials) {
  using A = acc_t<T>;
  __shared__ A scratch[32 * 4];
  extern __shared__ __align__(16) unsigned char smem_raw[];
  int64_t group = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  A* out_partial = partial + group * 2 * cols;
  A* acc = smem_partials ? reinterpret_cast<A*>(smem_raw) + threadIdx.y * 2 * cols : out_partial;
  int64_t packs = cols / V;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x)
#pragma unroll
    for (int j = 0; j < V; ++j) acc[p * V + j] = acc[cols + p * V + j] = 0;
  int64_t begin = group * rows_per_group, end = begin + rows_per_group;
  if (end > rows) end = rows;
  // Every y-row of the block runs the same number of iterations (row_allreduce synchronises the block).
  for (int64_t i = 0; i < rows_per_group; ++i) {
    int64_t row = begin + i;
    bool active = row < end;
    int64_t base = (active ? row : 0) * cols;
    A mean = active ? static_cast<A>(mean_in[row]) : A(0);
    A rstd = active ? static_cast<A>(rstd_in[row]) : A(0);
    A s1 = 0, s2 = 0;
    if (active)
      for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
        Pack<T, V> gv = load_pack<T, V>(dy + base + p * V), xv = load_pack<T, V>(x + base + p * V),
                   wv = load_pack<T, V>(w + p * V);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          A g = to_acc(gv.v[j]), xhat = (to_acc(xv.v[j]) - mean) * rstd;
          A wg = to_acc(wv.v[j]) * g;
          s1 += wg;
          s2 += wg * xhat;
          acc[p * V + j] += g * xhat;
          acc[cols + p * V + j] += g;
        }
      }
    A c1 = row_allreduce(s1, SumOp{}, scratch) / static_cast<A>(cols);
    A c2 = row_allreduce(s2, SumOp{}, scratch) / static_cast<A>(cols);
    if (!active) continue;
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> gv = load_pack<T, V>(dy + base + p * V), xv = load_pack<T, V>(x + base + p * V),
                 wv = load_pack<T, V>(w + p * V), r;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A xhat = (to_acc(xv.v[j]) - mean) * rstd;
        A wg = to_acc(wv.v[j]) * to_acc(gv.v[j]);
        r.v[j] = from_acc<T>((wg - c1 - xhat * c2) * rstd);
      }
      store_pack<T, V>(dx + base + p * V, r);
    }
  }
  if (smem_partials)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x)
#pragma unroll
      for (int j = 0; j < V; ++j) {
        out_partial[p * V + j] = acc[p * V + j];
        out_partial[cols + p * V + j] = acc[cols + p * V + j];
      }
}

// dw[c] = sum_g partial[g][0][c], db[c] = sum_g partial[g][1][c], g in increasing order.
template <typename T>
__global__ void layernorm_reduce_partials_kernel(T* __restrict__ dw, T* __restrict__ db,
                                                 const acc_t<T>* __restrict__ partial, int64_t groups, int64_t cols) {
  using A = acc_t<T>;
  for (int64_t c = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; c < cols;
       c += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    A sw = 0, sb = 0;
    for (int64_t g = 0; g < groups; ++g) {
      sw += partial[g * 2 * cols + c];
      sb += partial[g * 2 * cols + cols + c];
    }
    dw[c] = from_acc<T>(sw);
    if (db) db[c] = from_acc<T>(sb);
  }
}

struct BackwardShape {
  RowLaunch launch;
  int64_t groups, rows_per_group;
};

// Groups wanted: enough to fill the GPU, few enough that the partials stay small (16 MiB of f32 at most).
int64_t wanted_groups(int64_t rows, int64_t cols) {
  int64_t want = std::clamp<int64_t>((int64_t{1} << 21) / std::max<int64_t>(cols, 1), kMinGroups, kMaxGroups);
  return std::min(want, rows);
}

// row_launch rounds the wanted groups up to whole blocks of 1 or 4 rows.
BackwardShape backward_shape(int64_t rows, int64_t cols, int v) {
  RowLaunch l = row_launch(wanted_groups(rows, cols), cols / v);
  int64_t groups = static_cast<int64_t>(l.grid.x) * l.block.y;
  return {l, groups, (rows + groups - 1) / groups};
}

}  // namespace

template <typename T, typename S>
cudaError_t layernorm_forward(T* y, S* mean, S* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t cols,
                              double eps, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = cols % V == 0 && aligned16(y) && aligned16(x) && aligned16(w) && (!b || aligned16(b));
  RowLaunch l = row_launch(rows, vec ? cols / V : cols);
  if (vec)
    layernorm_forward_kernel<T, S, V><<<l.grid, l.block, 0, stream>>>(y, mean, rstd, x, w, b, rows, cols, eps);
  else
    layernorm_forward_kernel<T, S, 1><<<l.grid, l.block, 0, stream>>>(y, mean, rstd, x, w, b, rows, cols, eps);
  return cudaGetLastError();
}

int64_t layernorm_backward_partial_elems(int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return 0;
  // At most the wanted groups rounded up to a multiple of 4, whatever the vector width.
  return (wanted_groups(rows, cols) + 3) / 4 * 4 * 2 * cols;
}

template <typename T, typename S>
cudaError_t layernorm_backward(T* dx, T* dw, T* db, const T* dy, const T* x, const T* w, const S* mean, const S* rstd,
                               int64_t rows, int64_t cols, void* partial, cudaStream_t stream) {
  using A = acc_t<T>;
  if (cols == 0) return cudaSuccess;
  if (rows == 0) {  // no rows: dw = db = 0
    cudaError_t e = cudaMemsetAsync(dw, 0, cols * sizeof(T), stream);
    if (e == cudaSuccess && db) e = cudaMemsetAsync(db, 0, cols * sizeof(T), stream);
    return e;
  }
  constexpr int V = kPack<T>;
  bool vec = cols % V == 0 && aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(w);
  BackwardShape s = backward_shape(rows, cols, vec ? V : 1);
  size_t smem = static_cast<size_t>(s.launch.block.y) * 2 * cols * sizeof(A);
  bool smem_partials = smem <= kSmemPartialLimit;
  if (!smem_partials) smem = 0;
  A* part = static_cast<A*>(partial);
  if (vec)
    layernorm_backward_kernel<T, S, V><<<s.launch.grid, s.launch.block, smem, stream>>>(
        dx, dy, x, w, mean, rstd, rows, cols, s.rows_per_group, part, smem_partials);
  else
    layernorm_backward_kernel<T, S, 1><<<s.launch.grid, s.launch.block, smem, stream>>>(
        dx, dy, x, w, mean, rstd, rows, cols, s.rows_per_group, part, smem_partials);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  int threads = 256;
  unsigned blocks = static_cast<unsigned>(std::min<int64_t>((cols + threads - 1) / threads, 4096));
  layernorm_reduce_partials_kernel<T><<<blocks, threads, 0, stream>>>(dw, db, part, s.groups, cols);
  return cudaGetLastError();
}

#define MT_LAYERNORM_INSTANTIATE(T, S)                                                                           \
  template cudaError_t layernorm_forward<T, S>(T*, S*, S*, const T*, const T*, const T*, int64_t, int64_t, double, \
                                               cudaStream_t);                                                    \
  template cudaError_t layernorm_backward<T, S>(T*, T*, T*, const T*, const T*, const T*, const S*, const S*,      \
                                                int64_t, int64_t, void*, cudaStream_t);
MT_LAYERNORM_INSTANTIATE(float, float)
MT_LAYERNORM_INSTANTIATE(double, float)
MT_LAYERNORM_INSTANTIATE(double, double)
MT_LAYERNORM_INSTANTIATE(__nv_bfloat16, float)
MT_LAYERNORM_INSTANTIATE(__half, float)
#undef MT_LAYERNORM_INSTANTIATE

}  // namespace mt::gpukernels
