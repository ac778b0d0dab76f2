// LayerNorm kernels, alone or with the residual add before it (Note [Residual add fused with LayerNorm] in
// src/ops/nn_functional.cpp). Rows of at most 128 whole 16-byte packs take one warp each on the cp.async
// row pipeline of row_pipeline.cuh (many bytes in flight per SM, no block-wide synchronisation per row).
// Longer rows of whole packs that fit in registers are read once: forward keeps the row in registers for
// the mean, the variance (two passes, like the CPU reference) and the output; backward is a persistent
// grid whose warps stride over rows, writing dx from the row held in registers and summing their columns'
// dw/db terms in registers, one partial row per block. Other rows (odd lengths, misaligned, very long)
// loop over the row, re-reading it, with partials per row group. A second kernel sums the partials over
// blocks in a fixed order: no atomics, bit-reproducible runs.
#include <algorithm>

#include "device_utils.cuh"
#include "layernorm.h"
#include "row_launch.cuh"
#include "row_pipeline.cuh"

namespace mt::gpu {

namespace {

constexpr int64_t kMaxGroups = 1024;
constexpr int64_t kMinGroups = 128;
constexpr size_t kSmemPartialLimit = 40 * 1024;  // under the 48 KiB default with the static scratch
constexpr int kForwardRowThreads = 512;
// Backward threads hold two column sums for each of the row's elements they see and two rows of dy and
// x: 2 packs per row (16 bf16 elements) fit the 128 registers a bound of 512 threads leaves; 4 bf16
// packs took 232 registers (8 warps per SM).
constexpr int kBackwardRowThreads = 512;
constexpr int kBackwardMaxPacks = 2;
constexpr int kReduceSlices = 32;  // thread rows of the partial-sum kernel, each summing every 32nd group

// Whether a kernel takes the residual too: forward h = x + r, written out and normalised in place of x;
// backward dx = dh + LayerNorm's input gradient. A template argument of the pipelined and register
// kernels (the staged tensors and the registers differ, and plain LayerNorm keeps its own code); the loop
// kernels test their pointers (null: no residual) as they do the bias.
enum class Residual { kNo, kYes };

// a + b rounded to T, as the add op rounds it: the residual sum h.
template <typename T, int V>
__device__ __forceinline__ Pack<T, V> add_packs(const Pack<T, V>& a, const Pack<T, V>& b) {
  Pack<T, V> s;
#pragma unroll
  for (int j = 0; j < V; ++j) s.v[j] = from_acc<T>(to_acc(a.v[j]) + to_acc(b.v[j]));
  return s;
}

// R = kYes: h = x + r is formed as the row is read, written to h, and normalised.
template <typename T, typename S, int P, Residual R>
__global__ void __launch_bounds__(kForwardRowThreads)
    layernorm_forward_registers_kernel(T* __restrict__ y, T* __restrict__ h, S* __restrict__ mean_out,
                                       S* __restrict__ rstd_out, const T* __restrict__ x, const T* __restrict__ r,
                                       const T* __restrict__ w, const T* __restrict__ b, int64_t rows, int64_t cols,
                                       double eps) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  int64_t packs = cols / V;
  int64_t base = (active ? row : 0) * cols;
  Pack<T, V> xp[P];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (active && row_pack(i) < packs) {
      xp[i] = load_pack<T, V>(x + base + row_pack(i) * V);
      if constexpr (R == Residual::kYes) {
        xp[i] = add_packs(xp[i], load_pack<T, V>(r + base + row_pack(i) * V));
        store_pack<T, V>(h + base + row_pack(i) * V, xp[i]);
      }
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) xp[i].v[j] = from_acc<T>(A(0));
    }
  }
  A s = 0;
#pragma unroll
  for (int i = 0; i < P; ++i)
#pragma unroll
    for (int j = 0; j < V; ++j) s += to_acc(xp[i].v[j]);
  A mean = row_allreduce(s, SumOp{}, scratch) / static_cast<A>(cols);
  A q = 0;
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (row_pack(i) >= packs) continue;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A d = to_acc(xp[i].v[j]) - mean;
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
#pragma unroll
  for (int i = 0; i < P; ++i) {
    int64_t p = row_pack(i);
    if (p >= packs) continue;
    Pack<T, V> wv = load_pack<T, V>(w + p * V), bv, o;
    if (b) bv = load_pack<T, V>(b + p * V);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A a = (to_acc(xp[i].v[j]) - mean) * rstd * to_acc(wv.v[j]);
      if (b) a += to_acc(bv.v[j]);
      o.v[j] = from_acc<T>(a);
    }
    store_pack<T, V>(yr + p * V, o);
  }
}

// With r (not null) the row normalised is h = x + r, formed from x and r on each of the three reads and
// written to h on the last.
template <typename T, typename S, int V>
__global__ void layernorm_forward_loop_kernel(T* __restrict__ y, T* __restrict__ h, S* __restrict__ mean_out,
                                              S* __restrict__ rstd_out, const T* __restrict__ x,
                                              const T* __restrict__ r, const T* __restrict__ w,
                                              const T* __restrict__ b, int64_t rows, int64_t cols, double eps) {
  using A = acc_t<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  int64_t base = (active ? row : 0) * cols;
  int64_t packs = cols / V;
  auto load_row_pack = [&](int64_t p) {
    Pack<T, V> v = load_pack<T, V>(x + base + p * V);
    return r ? add_packs(v, load_pack<T, V>(r + base + p * V)) : v;
  };
  A s = 0;
  if (active)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> v = load_row_pack(p);
#pragma unroll
      for (int j = 0; j < V; ++j) s += to_acc(v.v[j]);
    }
  A mean = row_allreduce(s, SumOp{}, scratch) / static_cast<A>(cols);
  A q = 0;
  if (active)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> v = load_row_pack(p);
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
    Pack<T, V> v = load_row_pack(p), wv = load_pack<T, V>(w + p * V), o;
    if (r) store_pack<T, V>(h + base + p * V, v);
    Pack<T, V> bv;
    if (b) bv = load_pack<T, V>(b + p * V);
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A a = (to_acc(v.v[j]) - mean) * rstd * to_acc(wv.v[j]);
      if (b) a += to_acc(bv.v[j]);
      o.v[j] = from_acc<T>(a);
    }
    store_pack<T, V>(yr + p * V, o);
  }
}

// Sums a and b over the blockDim.x threads of a row in a fixed order, as row_allreduce does for one value
// but synchronising the block once for both. scratch holds blockDim.y * 64 values.
template <typename A>
__device__ __forceinline__ void row_allreduce_sum2(A& a, A& b, A* scratch) {
  for (int o = 16; o > 0; o >>= 1) {
    a += __shfl_xor_sync(0xffffffffu, a, o);
    b += __shfl_xor_sync(0xffffffffu, b, o);
  }
  if (blockDim.x == 32) return;
  A* s = scratch + threadIdx.y * 64;
  int warps = blockDim.x / 32;
  __syncthreads();  // earlier readers of `s` are done
  if (threadIdx.x % 32 == 0) {
    s[threadIdx.x / 32] = a;
    s[32 + threadIdx.x / 32] = b;
  }
  __syncthreads();
  a = s[0];
  b = s[32];
  for (int w = 1; w < warps; ++w) {
    a += s[w];
    b += s[32 + w];
  }
}

// Persistent: block k's y-row j handles rows k * blockDim.y + j + n * gridDim.x * blockDim.y. Each thread
// keeps w and its columns' sums of dy * xhat (dw) and dy (db) in registers; at the end the block's
// y-rows are added in order (through `fold`, (blockDim.y - 1) * 2 * cols values of dynamic shared memory)
// and written as partial row blockIdx.x: dw then db, 2 * cols values. R = kYes adds dres to dx, read as dx
// is written.
template <typename T, typename S, int P, Residual R>
__global__ void __launch_bounds__(kBackwardRowThreads)
    layernorm_backward_registers_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ dres,
                                        const T* __restrict__ x, const T* __restrict__ w,
                                        const S* __restrict__ mean_in, const S* __restrict__ rstd_in, int64_t rows,
                                        int64_t cols, acc_t<T>* __restrict__ partial) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  __shared__ A scratch[64 * 4];
  extern __shared__ __align__(16) unsigned char smem_raw[];
  int64_t packs = cols / V;
  Pack<T, V> wp[P];
  A dw[P][V], db[P][V];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (row_pack(i) < packs) {
      wp[i] = load_pack<T, V>(w + row_pack(i) * V);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) wp[i].v[j] = from_acc<T>(A(0));
    }
#pragma unroll
    for (int j = 0; j < V; ++j) dw[i][j] = db[i][j] = 0;
  }
  // This thread's rows are first + threadIdx.y for first = blockIdx.x * blockDim.y, + step, ...: the same
  // trip count for every thread of the block (row_allreduce_sum2 may synchronise it). The next row's dy
  // and x are loaded before the current row is worked on, so two rows per warp are in flight.
  int64_t step = static_cast<int64_t>(gridDim.x) * blockDim.y;
  Pack<T, V> gp[P], xp[P];
  auto load_row = [&](int64_t row, Pack<T, V>(&g)[P], Pack<T, V>(&xv)[P]) {
    bool active = row < rows;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (active && row_pack(i) < packs) {
        g[i] = load_pack<T, V>(dy + row * cols + row_pack(i) * V);
        xv[i] = load_pack<T, V>(x + row * cols + row_pack(i) * V);
      } else {  // dy = 0: adds nothing to the sums below
#pragma unroll
        for (int j = 0; j < V; ++j) g[i].v[j] = xv[i].v[j] = from_acc<T>(A(0));
      }
    }
  };
  load_row(static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y, gp, xp);
  for (int64_t first = static_cast<int64_t>(blockIdx.x) * blockDim.y; first < rows; first += step) {
    int64_t row = first + threadIdx.y;
    bool active = row < rows;
    Pack<T, V> next_g[P], next_x[P];
    load_row(row + step, next_g, next_x);
    A mean = active ? static_cast<A>(mean_in[row]) : A(0);
    A rstd = active ? static_cast<A>(rstd_in[row]) : A(0);
    A s1 = 0, s2 = 0;
#pragma unroll
    for (int i = 0; i < P; ++i)
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A g = to_acc(gp[i].v[j]), xhat = (to_acc(xp[i].v[j]) - mean) * rstd;
        A wg = to_acc(wp[i].v[j]) * g;
        s1 += wg;
        s2 += wg * xhat;
        dw[i][j] += g * xhat;
        db[i][j] += g;
      }
    row_allreduce_sum2(s1, s2, scratch);
    A c1 = s1 / static_cast<A>(cols), c2 = s2 / static_cast<A>(cols);
    if (active) {
#pragma unroll
      for (int i = 0; i < P; ++i) {
        if (row_pack(i) >= packs) continue;
        Pack<T, V> r;
        [[maybe_unused]] Pack<T, V> res;
        if constexpr (R == Residual::kYes) res = load_pack<T, V>(dres + row * cols + row_pack(i) * V);
#pragma unroll
        for (int j = 0; j < V; ++j) {
          A xhat = (to_acc(xp[i].v[j]) - mean) * rstd;
          A wg = to_acc(wp[i].v[j]) * to_acc(gp[i].v[j]);
          A d = (wg - c1 - xhat * c2) * rstd;
          if constexpr (R == Residual::kYes) d += to_acc(res.v[j]);
          r.v[j] = from_acc<T>(d);
        }
        store_pack<T, V>(dx + row * cols + row_pack(i) * V, r);
      }
    }
#pragma unroll
    for (int i = 0; i < P; ++i) {
      gp[i] = next_g[i];
      xp[i] = next_x[i];
    }
  }
  A* fold = reinterpret_cast<A*>(smem_raw);
  if (threadIdx.y > 0) {
    A* mine = fold + (threadIdx.y - 1) * 2 * cols;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (row_pack(i) >= packs) continue;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        mine[row_pack(i) * V + j] = dw[i][j];
        mine[cols + row_pack(i) * V + j] = db[i][j];
      }
    }
  }
  __syncthreads();
  if (threadIdx.y > 0) return;
  A* out = partial + static_cast<int64_t>(blockIdx.x) * 2 * cols;
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (row_pack(i) >= packs) continue;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      int64_t c = row_pack(i) * V + j;
      A sw = dw[i][j], sb = db[i][j];
      for (unsigned k = 1; k < blockDim.y; ++k) {
        sw += fold[(k - 1) * 2 * cols + c];
        sb += fold[(k - 1) * 2 * cols + cols + c];
      }
      out[c] = sw;
      out[cols + c] = sb;
    }
  }
}

// One "group" per (blockIdx.x, threadIdx.y): rows [group * rows_per_group, ...). Its column partials
// (dw then db, 2 * cols values) live in shared memory when they fit, else directly in `partial`. dres (null:
// none) is added to dx.
template <typename T, typename S, int V>
__global__ void layernorm_backward_loop_kernel(T* __restrict__ dx, const T* __restrict__ dy,
                                               const T* __restrict__ dres, const T* __restrict__ x,
                                               const T* __restrict__ w, const S* __restrict__ mean_in,
                                               const S* __restrict__ rstd_in, int64_t rows, int64_t cols,
                                               int64_t rows_per_group, acc_t<T>* __restrict__ partial,
                                               bool smem_partials) {
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
                 wv = load_pack<T, V>(w + p * V), r, res;
      if (dres) res = load_pack<T, V>(dres + base + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A xhat = (to_acc(xv.v[j]) - mean) * rstd;
        A wg = to_acc(wv.v[j]) * to_acc(gv.v[j]);
        A d = (wg - c1 - xhat * c2) * rstd;
        if (dres) d += to_acc(res.v[j]);
        r.v[j] = from_acc<T>(d);
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

// dw[c] = sum_g partial[g][0][c], db[c] = sum_g partial[g][1][c] in a fixed order: block (32, kReduceSlices)
// covers 32 of the 2 * cols partial columns; thread row y sums groups y, y + kReduceSlices, ... in turn,
// then thread row 0 adds the slices in order of y.
template <typename T, typename G>
__global__ void __launch_bounds__(32 * kReduceSlices)
    layernorm_reduce_partials_kernel(G* __restrict__ dw, G* __restrict__ db, const acc_t<T>* __restrict__ partial,
                                     int64_t groups, int64_t cols) {
  using A = acc_t<T>;
  __shared__ A slice[kReduceSlices][33];
  int64_t c = static_cast<int64_t>(blockIdx.x) * 32 + threadIdx.x;
  bool valid = c < 2 * cols;
  A s = 0;
  if (valid) {
#pragma unroll 8
    for (int64_t g = threadIdx.y; g < groups; g += kReduceSlices) s += partial[g * 2 * cols + c];
  }
  slice[threadIdx.y][threadIdx.x] = s;
  __syncthreads();
  if (threadIdx.y != 0 || !valid) return;
  for (int y = 1; y < kReduceSlices; ++y) s += slice[y][threadIdx.x];
  // G = T rounds the sum to T; G = the accumulation type (f32 gradients of half weights) keeps it.
  G out;
  if constexpr (std::is_same_v<G, A>) out = s;
  else out = from_acc<T>(s);
  if (c < cols)
    dw[c] = out;
  else if (db)
    db[c - cols] = out;
}

// One warp per row on the pipeline of row_pipeline.cuh (rows of at most 128 packs). Forward: the staged
// row is read once into registers for the mean, the variance (two passes) and the output. R = kYes stages
// x and r and forms h = x + r from them, writing it to h.
template <typename T, typename S, int P, Residual R>
__global__ void __launch_bounds__(32 * kPipeWarps)
    layernorm_forward_pipelined_kernel(T* __restrict__ y, T* __restrict__ h, S* __restrict__ mean_out,
                                       S* __restrict__ rstd_out, const T* __restrict__ x, const T* __restrict__ r,
                                       const T* __restrict__ w, const T* __restrict__ b, int64_t rows, int64_t cols,
                                       double eps) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x % 32;
  const int64_t packs = cols / V;
  Pack<T, V> wp[P], bp[P];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    int64_t p = lane + 32 * i;
#pragma unroll
    for (int j = 0; j < V; ++j) wp[i].v[j] = bp[i].v[j] = from_acc<T>(A(0));
    if (p < packs) {
      wp[i] = load_pack<T, V>(w + p * V);
      if (b) bp[i] = load_pack<T, V>(b + p * V);
    }
  }
  constexpr int kStaged = R == Residual::kYes ? 2 : 1;
  const T* staged[kStaged] = {x};
  if constexpr (R == Residual::kYes) staged[kStaged - 1] = r;
  WarpRowPipeline<T, P, kStaged> pipe(smem_raw, staged, rows, cols);
  pipe.run([&](int64_t row, const auto& stage) {
    Pack<T, V> xp[P];
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (stage.has(i)) {
        xp[i] = stage.pack(0, i);
        if constexpr (R == Residual::kYes) {
          xp[i] = add_packs(xp[i], stage.pack(kStaged - 1, i));
          store_pack<T, V>(h + row * cols + (lane + 32 * i) * V, xp[i]);
        }
      } else {
#pragma unroll
        for (int j = 0; j < V; ++j) xp[i].v[j] = from_acc<T>(A(0));
      }
    }
    A sum = 0;
#pragma unroll
    for (int i = 0; i < P; ++i)
#pragma unroll
      for (int j = 0; j < V; ++j) sum += to_acc(xp[i].v[j]);
    A mean = warp_allreduce(sum, SumOp{}) / static_cast<A>(cols);
    A q = 0;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A d = to_acc(xp[i].v[j]) - mean;
        q += d * d;
      }
    }
    A var = warp_allreduce(q, SumOp{}) / static_cast<A>(cols);
    A rstd = A(1) / sqrt_acc(var + static_cast<A>(eps));
    if (lane == 0) {
      mean_out[row] = static_cast<S>(mean);
      rstd_out[row] = static_cast<S>(rstd);
    }
    T* yr = y + row * cols;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A o = (to_acc(xp[i].v[j]) - mean) * rstd * to_acc(wp[i].v[j]);
        if (b) o += to_acc(bp[i].v[j]);
        r.v[j] = from_acc<T>(o);
      }
      store_pack<T, V>(yr + (lane + 32 * i) * V, r);
    }
  });
}

// Backward: stages hold dy, x, mean and rstd of a row; each warp sums its rows' dw/db terms for its lanes'
// columns in registers, and the block's warps are added in order into partial row blockIdx.x (dw then db,
// 2 * cols values), reusing the stage memory once all copies are done. dy and x are read from the stage
// twice, for the sums and again for dx, rather than held in registers in between: the registers stay
// free for the dw/db sums (held rows took 168 registers and spilled; re-reading made the kernel 17%
// faster on the H200, bench/NOTES.md). R = kYes stages dres too and adds it to dx.
template <typename T, typename S, int P, Residual R>
__global__ void __launch_bounds__(32 * kPipeWarps, 2)
    layernorm_backward_pipelined_kernel(T* __restrict__ dx, const T* __restrict__ dy, const T* __restrict__ dres,
                                        const T* __restrict__ x, const T* __restrict__ w,
                                        const S* __restrict__ mean_in, const S* __restrict__ rstd_in, int64_t rows,
                                        int64_t cols, acc_t<T>* __restrict__ partial) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
  const int64_t packs = cols / V;
  Pack<T, V> wp[P];
  A dw[P][V], db[P][V];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    int64_t p = lane + 32 * i;
    if (p < packs) {
      wp[i] = load_pack<T, V>(w + p * V);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) wp[i].v[j] = from_acc<T>(A(0));
    }
#pragma unroll
    for (int j = 0; j < V; ++j) dw[i][j] = db[i][j] = 0;
  }
  constexpr int kStaged = R == Residual::kYes ? 3 : 2;
  const T* staged[kStaged] = {dy, x};
  if constexpr (R == Residual::kYes) staged[kStaged - 1] = dres;
  WarpRowPipeline<T, P, kStaged, S, 2> pipe(smem_raw, staged, rows, cols, mean_in, rstd_in);
  // xhat = x * rstd - mean * rstd and dx = wg * rstd + xhat * k2 + k1 as FMAs: fewer instructions per element.
  pipe.run([&](int64_t row, const auto& stage) {
    A mean = static_cast<A>(stage.scalar(0)), rstd = static_cast<A>(stage.scalar(1));
    A shift = -mean * rstd;
    A s1 = 0, s2 = 0;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> gp = stage.pack(0, i), xp = stage.pack(1, i);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A g = to_acc(gp.v[j]), xhat = fma_acc(to_acc(xp.v[j]), rstd, shift);
        A wg = to_acc(wp[i].v[j]) * g;
        s1 += wg;
        s2 += wg * xhat;
        dw[i][j] += g * xhat;
        db[i][j] += g;
      }
    }
    for (int o = 16; o > 0; o >>= 1) {
      s1 += __shfl_xor_sync(0xffffffffu, s1, o);
      s2 += __shfl_xor_sync(0xffffffffu, s2, o);
    }
    A k1 = -rstd * s1 / static_cast<A>(cols), k2 = -rstd * s2 / static_cast<A>(cols);
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> gp = stage.pack(0, i), xp = stage.pack(1, i), r;
      [[maybe_unused]] Pack<T, V> res;
      if constexpr (R == Residual::kYes) res = stage.pack(kStaged - 1, i);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A xhat = fma_acc(to_acc(xp.v[j]), rstd, shift);
        A wg = to_acc(wp[i].v[j]) * to_acc(gp.v[j]);
        A d = fma_acc(wg, rstd, fma_acc(xhat, k2, k1));
        if constexpr (R == Residual::kYes) d += to_acc(res.v[j]);
        r.v[j] = from_acc<T>(d);
      }
      store_pack<T, V>(dx + row * cols + (lane + 32 * i) * V, r);
    }
  });
  __syncthreads();  // all warps are done with their stages
  A* fold = reinterpret_cast<A*>(smem_raw);
  if (warp > 0) {
    A* part = fold + (warp - 1) * 2 * cols;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      int64_t p = lane + 32 * i;
      if (p >= packs) continue;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        part[p * V + j] = dw[i][j];
        part[cols + p * V + j] = db[i][j];
      }
    }
  }
  __syncthreads();
  if (warp > 0) return;
  A* out = partial + static_cast<int64_t>(blockIdx.x) * 2 * cols;
#pragma unroll
  for (int i = 0; i < P; ++i) {
    int64_t p = lane + 32 * i;
    if (p >= packs) continue;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      int64_t c = p * V + j;
      A sw = dw[i][j], sb = db[i][j];
      for (int k = 1; k < kPipeWarps; ++k) {
        sw += fold[(k - 1) * 2 * cols + c];
        sb += fold[(k - 1) * 2 * cols + cols + c];
      }
      out[c] = sw;
      out[cols + c] = sb;
    }
  }
}

// Groups wanted: enough to fill the GPU, few enough that the partials stay small (16 MiB of f32 at most).
int64_t wanted_groups(int64_t rows, int64_t cols) {
  int64_t want = std::clamp<int64_t>((int64_t{1} << 21) / std::max<int64_t>(cols, 1), kMinGroups, kMaxGroups);
  return std::min(want, rows);
}

// Blocks of the persistent backward kernel: as many as fit on the device at once, at most one per y-row
// group of rows and at most wanted_groups (which sizes the partial buffer).
template <typename Kernel>
cudaError_t persistent_blocks(Kernel kernel, const RowLaunch& l, size_t smem, int64_t rows, int64_t cols,
                              unsigned& blocks) {
  int device = 0, sms = 0, per_sm = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess)
    e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, static_cast<int>(l.block.x * l.block.y), smem);
  if (e != cudaSuccess) return e;
  int64_t n = std::min<int64_t>({int64_t{std::max(per_sm, 1)} * sms, wanted_groups(rows, cols), l.grid.x});
  blocks = static_cast<unsigned>(std::max<int64_t>(n, 1));
  return cudaSuccess;
}

// The forward launcher: LayerNorm of x, or (R = kYes) of h = x + r, written to h.
template <Residual R, typename T, typename S>
cudaError_t forward_rows(T* y, T* h, S* mean, S* rstd, const T* x, const T* r, const T* w, const T* b, int64_t rows,
                         int64_t cols, double eps, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  constexpr int kStaged = R == Residual::kYes ? 2 : 1;
  bool vec = cols % V == 0 && is_aligned(y, 16) && is_aligned(x, 16) && is_aligned(w, 16) &&
             (!b || is_aligned(b, 16)) && (R == Residual::kNo || (is_aligned(h, 16) && is_aligned(r, 16)));
  int64_t warp_rows = (rows + kPipeWarps - 1) / kPipeWarps;
  bool done = false;
  cudaError_t status = cudaSuccess;
  if (vec) {
    dispatch_row_packs<kPipeMaxPacks>(pipe_packs_per_lane(cols / V), [&](auto p) {
      unsigned blocks = 0;
      status = launch_pipelined(layernorm_forward_pipelined_kernel<T, S, decltype(p)::value, R>,
                                PipeGrid{pipe_smem_bytes(cols / V, kStaged), warp_rows}, stream, blocks, y, h, mean,
                                rstd, x, r, w, b, rows, cols, eps);
      done = blocks > 0;
    });
  }
  if (status != cudaSuccess) return status;
  RegisterRowLaunch l = vec && !done ? register_row_launch(rows, cols / V, kForwardRowThreads) : RegisterRowLaunch{};
  if (!done) done = dispatch_row_packs(l.packs_per_thread, [&](auto p) {
    layernorm_forward_registers_kernel<T, S, decltype(p)::value, R>
        <<<l.launch.grid, l.launch.block, 0, stream>>>(y, h, mean, rstd, x, r, w, b, rows, cols, eps);
  });
  if (!done) {
    RowLaunch rl = row_launch(rows, vec ? cols / V : cols);
    if (vec)
      layernorm_forward_loop_kernel<T, S, V>
          <<<rl.grid, rl.block, 0, stream>>>(y, h, mean, rstd, x, r, w, b, rows, cols, eps);
    else
      layernorm_forward_loop_kernel<T, S, 1>
          <<<rl.grid, rl.block, 0, stream>>>(y, h, mean, rstd, x, r, w, b, rows, cols, eps);
  }
  return cudaGetLastError();
}

// The backward launcher: dx (+ dres with R = kYes), then the fixed-order sum of the dw/db partials.
template <Residual R, typename T, typename S, typename G>
cudaError_t backward_rows(T* dx, G* dw, G* db, const T* dy, const T* dres, const T* x, const T* w, const S* mean,
                          const S* rstd, int64_t rows, int64_t cols, void* partial, cudaStream_t stream) {
  using A = acc_t<T>;
  if (cols == 0) return cudaSuccess;
  if (rows == 0) {  // no rows: dw = db = 0
    cudaError_t e = cudaMemsetAsync(dw, 0, cols * sizeof(G), stream);
    if (e == cudaSuccess && db) e = cudaMemsetAsync(db, 0, cols * sizeof(G), stream);
    return e;
  }
  constexpr int V = kPack<T>;
  constexpr int kStaged = R == Residual::kYes ? 3 : 2;
  A* part = static_cast<A*>(partial);
  bool vec = cols % V == 0 && is_aligned(dx, 16) && is_aligned(dy, 16) && is_aligned(x, 16) && is_aligned(w, 16) &&
             (R == Residual::kNo || is_aligned(dres, 16));
  int64_t groups = 0;
  cudaError_t status = cudaSuccess;
  bool done = false;
  if (vec) {
    dispatch_row_packs<kPipeMaxPacks>(pipe_packs_per_lane(cols / V), [&](auto p) {
      size_t smem = std::max(pipe_smem_bytes(cols / V, kStaged),
                             static_cast<size_t>(kPipeWarps - 1) * 2 * cols * sizeof(A));
      int64_t limit = std::min(wanted_groups(rows, cols), (rows + kPipeWarps - 1) / kPipeWarps);
      // Two blocks per SM where three fit: each warp streams more rows and there are fewer partial rows to
      // sum (0.121 ms against 0.126 ms at 65536 x 1024 bf16 on the H200, bench/NOTES.md).
      unsigned blocks = 0;
      status = launch_pipelined(layernorm_backward_pipelined_kernel<T, S, decltype(p)::value, R>,
                                PipeGrid{smem, limit, 2}, stream, blocks, dx, dy, dres, x, w, mean, rstd, rows, cols,
                                part);
      groups = blocks;
      done = blocks > 0;
    });
  }
  if (status != cudaSuccess) return status;
  RegisterRowLaunch r = vec && !done ? register_row_launch(rows, cols / V, kBackwardRowThreads, kBackwardMaxPacks)
                                     : RegisterRowLaunch{};
  if (!done) done = dispatch_row_packs<kBackwardMaxPacks>(r.packs_per_thread, [&](auto p) {
    auto kernel = layernorm_backward_registers_kernel<T, S, decltype(p)::value, R>;
    size_t smem = static_cast<size_t>(r.launch.block.y - 1) * 2 * cols * sizeof(A);
    unsigned blocks = 0;
    status = persistent_blocks(kernel, r.launch, smem, rows, cols, blocks);
    if (status != cudaSuccess) return;
    kernel<<<blocks, r.launch.block, smem, stream>>>(dx, dy, dres, x, w, mean, rstd, rows, cols, part);
    groups = blocks;
  });
  if (status != cudaSuccess) return status;
  if (!done) {
    RowLaunch l = row_launch(wanted_groups(rows, cols), vec ? cols / V : cols);  // rounds up to whole blocks
    groups = static_cast<int64_t>(l.grid.x) * l.block.y;
    int64_t rows_per_group = (rows + groups - 1) / groups;
    size_t smem = static_cast<size_t>(l.block.y) * 2 * cols * sizeof(A);
    bool smem_partials = smem <= kSmemPartialLimit;
    if (!smem_partials) smem = 0;
    if (vec)
      layernorm_backward_loop_kernel<T, S, V><<<l.grid, l.block, smem, stream>>>(
          dx, dy, dres, x, w, mean, rstd, rows, cols, rows_per_group, part, smem_partials);
    else
      layernorm_backward_loop_kernel<T, S, 1><<<l.grid, l.block, smem, stream>>>(
          dx, dy, dres, x, w, mean, rstd, rows, cols, rows_per_group, part, smem_partials);
  }
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  unsigned blocks = static_cast<unsigned>((2 * cols + 31) / 32);
  layernorm_reduce_partials_kernel<T, G><<<blocks, dim3(32, kReduceSlices), 0, stream>>>(dw, db, part, groups, cols);
  return cudaGetLastError();
}

}  // namespace

template <typename T, typename S>
cudaError_t layernorm_forward(T* y, S* mean, S* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t cols,
                              double eps, cudaStream_t stream) {
  return forward_rows<Residual::kNo, T, S>(y, nullptr, mean, rstd, x, nullptr, w, b, rows, cols, eps, stream);
}

template <typename T, typename S>
cudaError_t add_layernorm_forward(T* h, T* y, S* mean, S* rstd, const T* x, const T* r, const T* w, const T* b,
                                  int64_t rows, int64_t cols, double eps, cudaStream_t stream) {
  return forward_rows<Residual::kYes, T, S>(y, h, mean, rstd, x, r, w, b, rows, cols, eps, stream);
}

int64_t layernorm_backward_partial_elems(int64_t rows, int64_t cols) {
  if (rows == 0 || cols == 0) return 0;
  // At most the wanted groups rounded up to a multiple of 4, whatever the path and vector width.
  return (wanted_groups(rows, cols) + 3) / 4 * 4 * 2 * cols;
}

template <typename T, typename S, typename G>
cudaError_t layernorm_backward(T* dx, G* dw, G* db, const T* dy, const T* x, const T* w, const S* mean, const S* rstd,
                               int64_t rows, int64_t cols, void* partial, cudaStream_t stream) {
  return backward_rows<Residual::kNo, T, S, G>(dx, dw, db, dy, nullptr, x, w, mean, rstd, rows, cols, partial, stream);
}

template <typename T, typename S, typename G>
cudaError_t add_layernorm_backward(T* dx, G* dw, G* db, const T* dy, const T* dh, const T* h, const T* w,
                                   const S* mean, const S* rstd, int64_t rows, int64_t cols, void* partial,
                                   cudaStream_t stream) {
  return backward_rows<Residual::kYes, T, S, G>(dx, dw, db, dy, dh, h, w, mean, rstd, rows, cols, partial, stream);
}

#define MT_LAYERNORM_INSTANTIATE(T, S)                                                                             \
  template cudaError_t layernorm_forward<T, S>(T*, S*, S*, const T*, const T*, const T*, int64_t, int64_t, double,   \
                                               cudaStream_t);                                                      \
  template cudaError_t add_layernorm_forward<T, S>(T*, T*, S*, S*, const T*, const T*, const T*, const T*, int64_t,  \
                                                   int64_t, double, cudaStream_t);
#define MT_LAYERNORM_BACKWARD_INSTANTIATE(T, S, G)                                                                 \
  template cudaError_t layernorm_backward<T, S, G>(T*, G*, G*, const T*, const T*, const T*, const S*, const S*,     \
                                                   int64_t, int64_t, void*, cudaStream_t);                         \
  template cudaError_t add_layernorm_backward<T, S, G>(T*, G*, G*, const T*, const T*, const T*, const T*, const S*, \
                                                       const S*, int64_t, int64_t, void*, cudaStream_t);
MT_LAYERNORM_INSTANTIATE(float, float)
MT_LAYERNORM_INSTANTIATE(double, float)
MT_LAYERNORM_INSTANTIATE(double, double)
MT_LAYERNORM_INSTANTIATE(__nv_bfloat16, float)
MT_LAYERNORM_INSTANTIATE(__half, float)
MT_LAYERNORM_BACKWARD_INSTANTIATE(float, float, float)
MT_LAYERNORM_BACKWARD_INSTANTIATE(double, float, double)
MT_LAYERNORM_BACKWARD_INSTANTIATE(double, double, double)
MT_LAYERNORM_BACKWARD_INSTANTIATE(__nv_bfloat16, float, __nv_bfloat16)
MT_LAYERNORM_BACKWARD_INSTANTIATE(__nv_bfloat16, float, float)
MT_LAYERNORM_BACKWARD_INSTANTIATE(__half, float, __half)
MT_LAYERNORM_BACKWARD_INSTANTIATE(__half, float, float)
#undef MT_LAYERNORM_BACKWARD_INSTANTIATE
#undef MT_LAYERNORM_INSTANTIATE

}  // namespace mt::gpu
