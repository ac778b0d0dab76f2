// Causal attention with online softmax (flash-attention style, never materialising T x T scores).
// Note [Attention kernel layout]: a block owns 8 rows (one warp each) and walks tiles of 32 rows of
// the other operand staged in shared memory in the accumulation type; lane l scores row l of the
// tile, and each lane keeps head-dim elements d = lane + 32 r of its row's accumulators. Forward and
// the dq pass walk key tiles for query rows; the dk/dv pass walks query tiles for key rows, so every
// gradient element is summed by one thread in a fixed order (deterministic, no atomics).
#include <algorithm>
#include <type_traits>

#include "attention.h"
#include "device_utils.cuh"

namespace mt::gpu {

namespace {

constexpr int kRows = 8;   // rows per block, one warp each
constexpr int kTile = 32;  // rows of a staged tile, one lane each
constexpr int kThreads = kRows * 32;
constexpr unsigned kFull = 0xffffffffu;

// Copies rows [r0, r0 + kTile) of a (seq, D) matrix into a (kTile, ld) tile, zero past seq.
template <typename T, typename A>
__device__ __forceinline__ void stage_tile(A* tile, int ld, const T* src, int64_t r0, int64_t seq, int D) {
  for (int idx = threadIdx.x; idx < kTile * D; idx += kThreads) {
    int r = idx / D, d = idx - r * D;
    tile[r * ld + d] = r0 + r < seq ? to_acc(src[(r0 + r) * D + d]) : A(0);
  }
}

template <typename A>
__device__ __forceinline__ A dot_row(const A* a, const A* b, int D) {
  A s = 0;
  for (int d = 0; d < D; ++d) s += a[d] * b[d];
  return s;
}

template <typename T, typename S, int NR>
__global__ void __launch_bounds__(kThreads) attention_forward_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                                     const T* __restrict__ v, T* __restrict__ out,
                                                                     S* __restrict__ lse, int64_t seq, int D,
                                                                     acc_t<T> scale, int64_t row_blocks) {
  using A = acc_t<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* ks = reinterpret_cast<A*>(smem_raw);  // kTile x (D + 1): padded, lanes read different rows
  A* vs = ks + kTile * (D + 1);            // kTile x D
  A* qs = vs + kTile * D;                  // kRows x D, pre-scaled
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t rb = row_blocks - 1 - blockIdx.x % row_blocks;  // long rows first
  int64_t bh = blockIdx.x / row_blocks;
  int64_t base = bh * seq * D;
  int64_t i = rb * kRows + warp;
  bool active = i < seq;
  A* qrow = qs + warp * D;
  for (int d = lane; d < D; d += 32) qrow[d] = active ? to_acc(q[base + i * D + d]) * scale : A(0);
  A o[NR];
#pragma unroll
  for (int r = 0; r < NR; ++r) o[r] = 0;
  A m = neg_inf<A>(), l = 0;
  int64_t last = std::min<int64_t>(seq - 1, rb * kRows + kRows - 1);
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    stage_tile(ks, D + 1, k + base, j0, seq, D);
    stage_tile(vs, D, v + base, j0, seq, D);
    __syncthreads();
    if (!active || j0 > i) continue;  // warp-uniform
    int64_t j = j0 + lane;
    A s = j <= i ? dot_row(qrow, ks + lane * (D + 1), D) : neg_inf<A>();
    A m_new = warp_allreduce(s, MaxOp{});
    m_new = m_new > m ? m_new : m;  // finite: key j0 <= i is visible
    A p = j <= i ? exp_acc(s - m_new) : A(0);
    A alpha = m == neg_inf<A>() ? A(0) : exp_acc(m - m_new);
    l = l * alpha + warp_allreduce(p, SumOp{});
    m = m_new;
#pragma unroll
    for (int r = 0; r < NR; ++r) o[r] *= alpha;
    for (int jj = 0; jj < kTile; ++jj) {
      A pj = __shfl_sync(kFull, p, jj);
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        int d = lane + 32 * r;
        if (d < D) o[r] += pj * vs[jj * D + d];
      }
    }
  }
  if (!active) return;
  A inv = A(1) / l;
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    int d = lane + 32 * r;
    if (d < D) out[base + i * D + d] = from_acc<T>(o[r] * inv);
  }
  if (lane == 0) lse[bh * seq + i] = static_cast<S>(m + log_acc(l));
}

// delta[row] = sum_d dout[row, d] * out[row, d]; one warp per row.
template <typename T>
__global__ void attention_delta_kernel(const T* __restrict__ out, const T* __restrict__ dout, acc_t<T>* __restrict__ delta,
                                       int64_t rows, int D) {
  using A = acc_t<T>;
  int64_t row = static_cast<int64_t>(blockIdx.x) * kRows + threadIdx.x / 32;
  if (row >= rows) return;
  int lane = threadIdx.x % 32;
  A s = 0;
  for (int d = lane; d < D; d += 32) s += to_acc(out[row * D + d]) * to_acc(dout[row * D + d]);
  s = warp_allreduce(s, SumOp{});
  if (lane == 0) delta[row] = s;
}

// dq_i = scale * sum_j p_ij (dp_ij - delta_i) k_j, p_ij = exp(scale q_i.k_j - lse_i), dp_ij = dout_i . v_j.
template <typename T, typename S, int NR>
__global__ void __launch_bounds__(kThreads) attention_dq_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                                const T* __restrict__ v, const T* __restrict__ dout,
                                                                const S* __restrict__ lse,
                                                                const acc_t<T>* __restrict__ delta, T* __restrict__ dq,
                                                                int64_t seq, int D, acc_t<T> scale, int64_t row_blocks) {
  using A = acc_t<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* ks = reinterpret_cast<A*>(smem_raw);  // kTile x (D + 1)
  A* vs = ks + kTile * (D + 1);            // kTile x (D + 1)
  A* qs = vs + kTile * (D + 1);            // kRows x D, pre-scaled
  A* gs = qs + kRows * D;                  // kRows x D: dout rows
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t rb = row_blocks - 1 - blockIdx.x % row_blocks;
  int64_t bh = blockIdx.x / row_blocks;
  int64_t base = bh * seq * D;
  int64_t i = rb * kRows + warp;
  bool active = i < seq;
  A* qrow = qs + warp * D;
  A* grow = gs + warp * D;
  for (int d = lane; d < D; d += 32) {
    qrow[d] = active ? to_acc(q[base + i * D + d]) * scale : A(0);
    grow[d] = active ? to_acc(dout[base + i * D + d]) : A(0);
  }
  A lse_i = active ? static_cast<A>(lse[bh * seq + i]) : A(0);
  A delta_i = active ? delta[bh * seq + i] : A(0);
  A acc[NR];
#pragma unroll
  for (int r = 0; r < NR; ++r) acc[r] = 0;
  int64_t last = std::min<int64_t>(seq - 1, rb * kRows + kRows - 1);
  for (int64_t j0 = 0; j0 <= last; j0 += kTile) {
    __syncthreads();
    stage_tile(ks, D + 1, k + base, j0, seq, D);
    stage_tile(vs, D + 1, v + base, j0, seq, D);
    __syncthreads();
    if (!active || j0 > i) continue;
    int64_t j = j0 + lane;
    A ds = 0;
    if (j <= i) {
      A p = exp_acc(dot_row(qrow, ks + lane * (D + 1), D) - lse_i);
      ds = p * (dot_row(grow, vs + lane * (D + 1), D) - delta_i);
    }
    for (int jj = 0; jj < kTile; ++jj) {
      A dsj = __shfl_sync(kFull, ds, jj);
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        int d = lane + 32 * r;
        if (d < D) acc[r] += dsj * ks[jj * (D + 1) + d];
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    int d = lane + 32 * r;
    if (d < D) dq[base + i * D + d] = from_acc<T>(acc[r] * scale);
  }
}

// For key row j: dv_j = sum_i p_ij dout_i; dk_j = scale * sum_i p_ij (dp_ij - delta_i) q_i, over i >= j.
template <typename T, typename S, int NR>
__global__ void __launch_bounds__(kThreads) attention_dkdv_kernel(
    const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v, const T* __restrict__ dout,
    const S* __restrict__ lse, const acc_t<T>* __restrict__ delta, T* __restrict__ dk, T* __restrict__ dv,
    int64_t seq, int D, acc_t<T> scale, int64_t row_blocks) {
  using A = acc_t<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  A* qs = reinterpret_cast<A*>(smem_raw);  // kTile x (D + 1): query rows, unscaled
  A* gs = qs + kTile * (D + 1);            // kTile x (D + 1): dout rows
  A* ls = gs + kTile * (D + 1);            // kTile: lse of the tile's rows
  A* es = ls + kTile;                      // kTile: delta of the tile's rows
  A* krow_all = es + kTile;                // kRows x D, pre-scaled
  A* vrow_all = krow_all + kRows * D;      // kRows x D
  int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  int64_t rb = blockIdx.x % row_blocks;  // short key rows (many queries) first
  int64_t bh = blockIdx.x / row_blocks;
  int64_t base = bh * seq * D;
  int64_t j = rb * kRows + warp;
  bool active = j < seq;
  A* krow = krow_all + warp * D;
  A* vrow = vrow_all + warp * D;
  for (int d = lane; d < D; d += 32) {
    krow[d] = active ? to_acc(k[base + j * D + d]) * scale : A(0);
    vrow[d] = active ? to_acc(v[base + j * D + d]) : A(0);
  }
  A acc_k[NR], acc_v[NR];
#pragma unroll
  for (int r = 0; r < NR; ++r) acc_k[r] = acc_v[r] = 0;
  int64_t first = (rb * kRows) / kTile * kTile;
  for (int64_t i0 = first; i0 < seq; i0 += kTile) {
    __syncthreads();
    stage_tile(qs, D + 1, q + base, i0, seq, D);
    stage_tile(gs, D + 1, dout + base, i0, seq, D);
    if (threadIdx.x < kTile) {
      int64_t i = i0 + threadIdx.x;
      ls[threadIdx.x] = i < seq ? static_cast<A>(lse[bh * seq + i]) : A(0);
      es[threadIdx.x] = i < seq ? delta[bh * seq + i] : A(0);
    }
    __syncthreads();
    if (!active || i0 + kTile - 1 < j) continue;  // warp-uniform: the whole tile is before row j
    int64_t i = i0 + lane;
    A p = 0, ds = 0;
    if (i >= j && i < seq) {
      p = exp_acc(dot_row(krow, qs + lane * (D + 1), D) - ls[lane]);
      ds = p * (dot_row(vrow, gs + lane * (D + 1), D) - es[lane]);
    }
    for (int ii = 0; ii < kTile; ++ii) {
      A pi = __shfl_sync(kFull, p, ii), dsi = __shfl_sync(kFull, ds, ii);
#pragma unroll
      for (int r = 0; r < NR; ++r) {
        int d = lane + 32 * r;
        if (d < D) {
          acc_v[r] += pi * gs[ii * (D + 1) + d];
          acc_k[r] += dsi * qs[ii * (D + 1) + d];
        }
      }
    }
  }
  if (!active) return;
#pragma unroll
  for (int r = 0; r < NR; ++r) {
    int d = lane + 32 * r;
    if (d < D) {
      dk[base + j * D + d] = from_acc<T>(acc_k[r] * scale);
      dv[base + j * D + d] = from_acc<T>(acc_v[r]);
    }
  }
}

// Calls fn(std::integral_constant<int, NR>) with the register count per lane for head_dim (NR * 32 >= head_dim).
template <typename Fn>
cudaError_t with_head_regs(int head_dim, Fn&& fn) {
  if (head_dim <= 32) return fn(std::integral_constant<int, 1>{});
  if (head_dim <= 64) return fn(std::integral_constant<int, 2>{});
  if (head_dim <= 128) return fn(std::integral_constant<int, 4>{});
  if (head_dim <= kAttentionMaxHeadDim) return fn(std::integral_constant<int, 8>{});
  return cudaErrorInvalidValue;
}

// Launches `kernel` with `smem` bytes of dynamic shared memory, raising the kernel's limit when needed.
template <typename Kernel, typename... Args>
cudaError_t launch_with_smem(Kernel kernel, int64_t blocks, size_t smem, cudaStream_t stream, Args... args) {
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<static_cast<unsigned>(blocks), kThreads, smem, stream>>>(args...);
  return cudaGetLastError();
}

}  // namespace

template <typename T, typename S>
cudaError_t attention_forward(const T* q, const T* k, const T* v, T* out, S* lse, int64_t bh, int64_t seq,
                              int head_dim, double scale, cudaStream_t stream) {
  using A = acc_t<T>;
  if (bh == 0 || seq == 0) return cudaSuccess;
  int64_t row_blocks = (seq + kRows - 1) / kRows;
  size_t smem = (static_cast<size_t>(kTile) * (head_dim + 1) + kTile * head_dim + kRows * head_dim) * sizeof(A);
  return with_head_regs(head_dim, [&](auto nr) {
    constexpr int NR = decltype(nr)::value;
    return launch_with_smem(attention_forward_kernel<T, S, NR>, bh * row_blocks, smem, stream, q, k, v, out, lse, seq,
                            head_dim, static_cast<A>(scale), row_blocks);
  });
}

template <typename T, typename S>
cudaError_t attention_backward(const T* q, const T* k, const T* v, const T* out, const T* dout, const S* lse,
                               T* dq, T* dk, T* dv, void* delta_buf, int64_t bh, int64_t seq, int head_dim,
                               double scale, cudaStream_t stream) {
  using A = acc_t<T>;
  if (bh == 0 || seq == 0) return cudaSuccess;
  A* delta = static_cast<A*>(delta_buf);
  int64_t rows = bh * seq;
  attention_delta_kernel<T><<<static_cast<unsigned>((rows + kRows - 1) / kRows), kThreads, 0, stream>>>(
      out, dout, delta, rows, head_dim);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  int64_t row_blocks = (seq + kRows - 1) / kRows;
  size_t tiles = 2 * static_cast<size_t>(kTile) * (head_dim + 1);
  size_t smem_dq = (tiles + 2 * kRows * head_dim) * sizeof(A);
  size_t smem_dkdv = (tiles + 2 * kTile + 2 * kRows * head_dim) * sizeof(A);
  return with_head_regs(head_dim, [&](auto nr) {
    constexpr int NR = decltype(nr)::value;
    cudaError_t err = launch_with_smem(attention_dq_kernel<T, S, NR>, bh * row_blocks, smem_dq, stream, q, k, v, dout,
                                       lse, static_cast<const A*>(delta), dq, seq, head_dim, static_cast<A>(scale),
                                       row_blocks);
    if (err != cudaSuccess) return err;
    return launch_with_smem(attention_dkdv_kernel<T, S, NR>, bh * row_blocks, smem_dkdv, stream, q, k, v, dout, lse,
                            static_cast<const A*>(delta), dk, dv, seq, head_dim, static_cast<A>(scale), row_blocks);
  });
}

#define MT_ATTENTION_INSTANTIATE(T, S)                                                                         \
  template cudaError_t attention_forward<T, S>(const T*, const T*, const T*, T*, S*, int64_t, int64_t, int, double, \
                                               cudaStream_t);                                                    \
  template cudaError_t attention_backward<T, S>(const T*, const T*, const T*, const T*, const T*, const S*, T*, T*,  \
                                                T*, void*, int64_t, int64_t, int, double, cudaStream_t);
MT_ATTENTION_INSTANTIATE(float, float)
MT_ATTENTION_INSTANTIATE(double, double)
MT_ATTENTION_INSTANTIATE(double, float)
MT_ATTENTION_INSTANTIATE(__nv_bfloat16, float)
MT_ATTENTION_INSTANTIATE(__half, float)
#undef MT_ATTENTION_INSTANTIATE

}  // namespace mt::gpu
