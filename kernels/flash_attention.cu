// Causal attention on tensor cores for bf16 / f16, head dim 64 or 128 (FlashAttention-2 schedule).
// Note [Flash attention schedule]: every warp owns 16 rows of the block's resident tile and streams
// row tiles of the other operands through shared memory (cp.async, two stages), with all matmuls on
// mma.m16n8k16 (f32 accumulation) and fragments loaded by ldmatrix from XOR-swizzled tiles.
//  - forward: a block per query tile; S = Q K^T, online softmax in registers (exp2, the scale folded
//    into one FMA per score), O += P V.
//  - backward, dk/dv: a block per key tile walking the query tiles at and after the diagonal;
//    S^T = K Q^T, P^T from lse, dP^T = V dO^T, dS^T = P^T (dP^T - delta), dV += P^T dO, dK += dS^T Q.
//  - backward, dq: a block per query tile walking key tiles up to the diagonal, recomputing P and
//    dS; dQ += dS K. Each gradient element is summed by one thread in a fixed order: deterministic.
// Only tiles crossing the diagonal are masked; a warp skips tiles wholly above it. P and dS are
// rounded to the input type before their matmuls, as FlashAttention does.
#include <algorithm>

#include "device_utils.cuh"
#include "flash_attention.h"
#include "tensor_core.cuh"

namespace mt::gpu {

namespace {

constexpr int kStream = 64;  // rows of a streamed tile
constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;
constexpr unsigned kFull = 0xffffffffu;

// Per head dim: warps per block (16 resident rows each) and blocks per SM the registers must allow
// (__launch_bounds__), per kernel; the dk/dv kernel's query-tile rows.
template <int D> struct FlashConfig;
template <> struct FlashConfig<64> {
  static constexpr int kForwardWarps = 8, kForwardBlocks = 2;
  static constexpr int kDqWarps = 4, kDqBlocks = 3;
  static constexpr int kDkdvWarps = 4, kDkdvBlocks = 3, kDkdvRows = 32;
};
template <> struct FlashConfig<128> {
  static constexpr int kForwardWarps = 4, kForwardBlocks = 2;
  static constexpr int kDqWarps = 4, kDqBlocks = 2;
  static constexpr int kDkdvWarps = 4, kDkdvBlocks = 2, kDkdvRows = 32;
};

// Byte offset of 16-byte chunk c of row r in a tile of D 16-bit columns. Chunks are XOR-swizzled by
// row so the 8 rows an ldmatrix (or 8 consecutive rows of stores) touches land on distinct banks.
template <int D>
__device__ __forceinline__ uint32_t swz(int r, int c) {
  return static_cast<uint32_t>(r * (D * 2) + ((c ^ (r & 7)) << 4));
}

// Starts copying rows [r0, r0 + R) of a (seq, D) matrix into the R x D tile at `dst`; rows past seq read as zero.
template <int R, int D, int kThreads, typename T>
__device__ __forceinline__ void load_tile(uint32_t dst, const T* src, int r0, int seq) {
  constexpr int kChunks = D / 8;
  static_assert(R * kChunks % kThreads == 0, "a tile's 16-byte chunks must split evenly over the block");
#pragma unroll
  for (int it = 0; it < R * kChunks / kThreads; ++it) {
    int idx = it * kThreads + static_cast<int>(threadIdx.x);
    int r = idx / kChunks, c = idx % kChunks;
    bool in = r0 + r < seq;
    cp_async_16(dst + swz<D>(r, c), src + static_cast<int64_t>(in ? r0 + r : 0) * D + c * 8, in ? 16 : 0);
  }
}

// a[kk]: A fragments of rows [row0, row0 + 16) and columns [16 kk, 16 kk + 16) of a tile with K columns.
template <int K>
__device__ __forceinline__ void load_a_frags(uint32_t (&a)[K / 16][4], uint32_t tile, int row0, int lane) {
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk) ldmatrix_x4(a[kk], tile + swz<K>(row0 + (lane & 15), 2 * kk + (lane >> 4)));
}

// acc (16 x N) += A (16 x K, fragments) * B^T, B the rows [row0, row0 + N) of a tile with K columns.
template <typename T, int N, int K>
__device__ __forceinline__ void mma_a_bt(float (&acc)[N / 8][4], const uint32_t (&a)[K / 16][4], uint32_t tile,
                                         int row0, int lane) {
#pragma unroll
  for (int kk = 0; kk < K / 16; ++kk)
#pragma unroll
    for (int np = 0; np < N / 16; ++np) {
      uint32_t b[4];
      ldmatrix_x4(b, tile + swz<K>(row0 + np * 16 + (lane & 7) + ((lane >> 4) << 3), 2 * kk + ((lane >> 3) & 1)));
      mma_16816<T>(acc[2 * np], a[kk], b[0], b[1]);
      mma_16816<T>(acc[2 * np + 1], a[kk], b[2], b[3]);
    }
}

// acc (16 x D) += P * B: P (16 x N) in accumulator layout, rounded to T; B the rows [row0, row0 + N) of a
// tile with D columns.
template <typename T, int N, int D>
__device__ __forceinline__ void mma_p_b(float (&acc)[D / 8][4], const float (&p)[N / 8][4], uint32_t tile, int row0,
                                        int lane) {
#pragma unroll
  for (int kk = 0; kk < N / 16; ++kk) {
    const uint32_t a[4] = {pack_pair<T>(p[2 * kk][0], p[2 * kk][1]), pack_pair<T>(p[2 * kk][2], p[2 * kk][3]),
                           pack_pair<T>(p[2 * kk + 1][0], p[2 * kk + 1][1]),
                           pack_pair<T>(p[2 * kk + 1][2], p[2 * kk + 1][3])};
#pragma unroll
    for (int dp = 0; dp < D / 16; ++dp) {
      uint32_t b[4];
      ldmatrix_x4_trans(b, tile + swz<D>(row0 + kk * 16 + (lane & 7) + (((lane >> 3) & 1) << 3), 2 * dp + (lane >> 4)));
      mma_16816<T>(acc[2 * dp], a, b[0], b[1]);
      mma_16816<T>(acc[2 * dp + 1], a, b[2], b[3]);
    }
  }
}

// Writes a warp's 16 x D accumulator, rows g scaled by f0 and rows g + 8 by f1, as T into rows
// [row0, row0 + 16) of a tile.
template <typename T, int D>
__device__ __forceinline__ void stage_rows(uint32_t tile, int row0, const float (&acc)[D / 8][4], float f0, float f1,
                                           int lane) {
  int g = lane >> 2, tig = lane & 3;
#pragma unroll
  for (int dt = 0; dt < D / 8; ++dt) {
    st_shared_u32(tile + swz<D>(row0 + g, dt) + tig * 4, pack_pair<T>(acc[dt][0] * f0, acc[dt][1] * f0));
    st_shared_u32(tile + swz<D>(row0 + g + 8, dt) + tig * 4, pack_pair<T>(acc[dt][2] * f1, acc[dt][3] * f1));
  }
}

// Copies tile rows [row0, row0 + 16) to rows [grow0, grow0 + 16) of a (seq, D) matrix, skipping rows past seq.
template <typename T, int D>
__device__ __forceinline__ void store_rows(T* dst, uint32_t tile, int row0, int grow0, int seq, int lane) {
  constexpr int kChunks = D / 8;
#pragma unroll
  for (int it = 0; it < 16 * kChunks / 32; ++it) {
    int idx = it * 32 + lane, r = idx / kChunks, c = idx % kChunks;
    uint4 val = ld_shared_v4(tile + swz<D>(row0 + r, c));
    if (grow0 + r < seq) *reinterpret_cast<uint4*>(dst + static_cast<int64_t>(grow0 + r) * D + c * 8) = val;
  }
}

__device__ __forceinline__ float quad_max(float x) {
  x = fmaxf(x, __shfl_xor_sync(kFull, x, 1));
  return fmaxf(x, __shfl_xor_sync(kFull, x, 2));
}
__device__ __forceinline__ float quad_sum(float x) {
  x += __shfl_xor_sync(kFull, x, 1);
  return x + __shfl_xor_sync(kFull, x, 2);
}

// Grid (bh, query tiles), the longest tiles first. Shared: Q (kWarps*16 x D), then two stages of K and of V.
template <typename T, int D, int kWarps, int kBlocks>
__global__ void __launch_bounds__(kWarps * 32, kBlocks) flash_forward_kernel(const T* __restrict__ q, const T* __restrict__ k,
                                                                   const T* __restrict__ v, T* __restrict__ out,
                                                                   float* __restrict__ lse, int seq, float scale_log2) {
  constexpr int kRows = kWarps * 16, kThreads = kWarps * 32;
  constexpr uint32_t kStage = kStream * D * 2;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sq = smem_addr(smem), sk = sq + kRows * D * 2, sv = sk + 2 * kStage;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane >> 2, tig = lane & 3;
  const int64_t bh = blockIdx.x, base = bh * seq * D;
  const int q0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kRows;
  const int row0 = warp * 16, wr = q0 + row0;  // the warp's rows: in the tile, in the sequence
  const int tiles = (std::min(q0 + kRows, seq) + kStream - 1) / kStream;

  load_tile<kRows, D, kThreads>(sq, q + base, q0, seq);
  load_tile<kStream, D, kThreads>(sk, k + base, 0, seq);
  load_tile<kStream, D, kThreads>(sv, v + base, 0, seq);
  cp_async_commit();

  float o[D / 8][4] = {};
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.f, 0.f};  // rows g, g + 8: running max of q.k, partial sum
  for (int t = 0; t < tiles; ++t) {
    if (t + 1 < tiles) {
      const uint32_t next = ((t + 1) & 1) * kStage;
      load_tile<kStream, D, kThreads>(sk + next, k + base, (t + 1) * kStream, seq);
      load_tile<kStream, D, kThreads>(sv + next, v + base, (t + 1) * kStream, seq);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int j0 = t * kStream;
    if (j0 <= wr + 15) {  // warp-uniform: some key of the tile is visible to the warp's rows
      const uint32_t stage = (t & 1) * kStage;
      float s[kStream / 8][4] = {};
      {
        uint32_t qf[D / 16][4];  // reloaded per tile: holding them would cost D / 2 registers
        load_a_frags<D>(qf, sq, row0, lane);
        mma_a_bt<T, kStream, D>(s, qf, sk + stage, 0, lane);
      }
      // Maxima over raw scores (scale_log2 > 0), so each exponent is one FMA: 2^(s scale_log2 - m scale_log2).
      const bool diag = j0 + kStream - 1 > wr;
      float mx[2] = {m[0], m[1]};
#pragma unroll
      for (int nt = 0; nt < kStream / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (diag && j0 + nt * 8 + 2 * tig + (e & 1) > wr + g + 8 * (e >> 1)) s[nt][e] = -INFINITY;
          mx[e >> 1] = fmaxf(mx[e >> 1], s[nt][e]);
        }
      // Key j0 <= every row of the warp is visible, so the new maxima are finite.
      float alpha[2], ms[2], sum[2] = {0.f, 0.f};
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        mx[h] = quad_max(mx[h]);
        alpha[h] = exp2_approx((m[h] - mx[h]) * scale_log2);
        m[h] = mx[h];
        ms[h] = mx[h] * scale_log2;
      }
#pragma unroll
      for (int nt = 0; nt < kStream / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[nt][e] = exp2_approx(fmaf(s[nt][e], scale_log2, -ms[e >> 1]));
          sum[e >> 1] += s[nt][e];
        }
#pragma unroll
      for (int h = 0; h < 2; ++h) l[h] = l[h] * alpha[h] + sum[h];
#pragma unroll
      for (int dt = 0; dt < D / 8; ++dt) {
        o[dt][0] *= alpha[0];
        o[dt][1] *= alpha[0];
        o[dt][2] *= alpha[1];
        o[dt][3] *= alpha[1];
      }
      mma_p_b<T, kStream, D>(o, s, sv + stage, 0, lane);
    }
    __syncthreads();  // the stage just read is refilled next iteration
  }

#pragma unroll
  for (int h = 0; h < 2; ++h) l[h] = quad_sum(l[h]);
  // The warp's own Q rows are read only by the warp: stage O there.
  stage_rows<T, D>(sq, row0, o, 1.f / l[0], 1.f / l[1], lane);
  __syncwarp();
  store_rows<T, D>(out + base, sq, row0, wr, seq, lane);
  if (tig == 0) {
#pragma unroll
    for (int h = 0; h < 2; ++h) {
      int r = wr + g + 8 * h;
      if (r < seq) lse[bh * seq + r] = (m[h] * scale_log2 + __log2f(l[h])) * kLn2;
    }
  }
}

// delta[row] = sum_d dout[row, d] * out[row, d]; D / 8 threads per row, 16 bytes each.
template <typename T, int D>
__global__ void flash_delta_kernel(const T* __restrict__ out, const T* __restrict__ dout, float* __restrict__ delta,
                                   int64_t rows) {
  constexpr int kLanes = D / 8;
  int64_t idx = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  int64_t row = idx / kLanes;
  int c = static_cast<int>(idx % kLanes);
  float s = 0.f;
  if (row < rows) {
    Pack<T, 8> a = load_pack<T, 8>(out + row * D + c * 8), b = load_pack<T, 8>(dout + row * D + c * 8);
#pragma unroll
    for (int e = 0; e < 8; ++e) s += to_acc(a.v[e]) * to_acc(b.v[e]);
  }
#pragma unroll
  for (int o = kLanes / 2; o > 0; o >>= 1) s += __shfl_xor_sync(kFull, s, o);
  if (row < rows && c == 0) delta[row] = s;
}

// Grid (bh, key tiles), the longest first. Shared: K and V (kWarps*16 x D), two stages of Q and of dO
// (kM x D), then two stages of lse and of delta (kM floats). Query rows past seq read as zero: their
// P is 1 but dO and delta are 0, so they add nothing.
template <typename T, int D, int kWarps, int kBlocks, int kM>
__global__ void __launch_bounds__(kWarps * 32, kBlocks)
    flash_dkdv_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                      const T* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                      T* __restrict__ dk, T* __restrict__ dv, int seq, float scale, float scale_log2) {
  constexpr int kKeys = kWarps * 16, kThreads = kWarps * 32;
  constexpr uint32_t kStage = kM * D * 2;
  static_assert(kKeys % kM == 0, "a key tile starts on a query-tile boundary");
  static_assert(2 * kM <= kThreads, "one thread per lse and delta element");
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sk = smem_addr(smem), sv = sk + kKeys * D * 2, sq = sv + kKeys * D * 2, sdo = sq + 2 * kStage;
  const uint32_t sstat = sdo + 2 * kStage;  // [lse, delta][stage][kM] floats
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane >> 2, tig = lane & 3;
  const int64_t bh = blockIdx.x, base = bh * seq * D;
  const int j0 = static_cast<int>(blockIdx.y) * kKeys;
  const int row0 = warp * 16, wj = j0 + row0;  // the warp's keys: in the tile, in the sequence
  const int first = j0 / kM, tiles = (seq + kM - 1) / kM;

  auto load_queries = [&](int t, int stage) {
    load_tile<kM, D, kThreads>(sq + stage * kStage, q + base, t * kM, seq);
    load_tile<kM, D, kThreads>(sdo + stage * kStage, dout + base, t * kM, seq);
    if (static_cast<int>(threadIdx.x) < 2 * kM) {
      int which = static_cast<int>(threadIdx.x) / kM, r = static_cast<int>(threadIdx.x) % kM;
      bool in = t * kM + r < seq;
      const float* src = (which == 0 ? lse : delta) + bh * seq + (in ? t * kM + r : 0);
      cp_async_4(sstat + ((which * 2 + stage) * kM + r) * 4, src, in ? 4 : 0);
    }
  };
  load_tile<kKeys, D, kThreads>(sk, k + base, j0, seq);
  load_tile<kKeys, D, kThreads>(sv, v + base, j0, seq);
  load_queries(first, 0);
  cp_async_commit();

  float dk_acc[D / 8][4] = {}, dv_acc[D / 8][4] = {};
  for (int t = first; t < tiles; ++t) {
    const int stage = (t - first) & 1;
    if (t + 1 < tiles) {
      load_queries(t + 1, stage ^ 1);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int i0 = t * kM;
    if (i0 + kM - 1 >= wj) {  // warp-uniform: some query of the tile sees some key of the warp
      const uint32_t tq = sq + stage * kStage, tdo = sdo + stage * kStage;
      const uint32_t tlse = sstat + stage * kM * 4, tdelta = sstat + (2 + stage) * kM * 4;
      float s[kM / 8][4] = {}, dp[kM / 8][4] = {};
      {
        uint32_t a[D / 16][4];
        load_a_frags<D>(a, sk, row0, lane);
        mma_a_bt<T, kM, D>(s, a, tq, 0, lane);  // S^T = K Q^T
        load_a_frags<D>(a, sv, row0, lane);
        mma_a_bt<T, kM, D>(dp, a, tdo, 0, lane);  // dP^T = V dO^T
      }
      const bool diag = i0 < wj + 15;
#pragma unroll
      for (int nt = 0; nt < kM / 8; ++nt) {
        const float2 ls = ld_shared_f32x2(tlse + (nt * 8 + 2 * tig) * 4);
        const float2 de = ld_shared_f32x2(tdelta + (nt * 8 + 2 * tig) * 4);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float p = exp2_approx(fmaf(s[nt][e], scale_log2, -((e & 1) ? ls.y : ls.x) * kLog2e));
          if (diag && i0 + nt * 8 + 2 * tig + (e & 1) < wj + g + 8 * (e >> 1)) p = 0.f;
          s[nt][e] = p;
          dp[nt][e] = p * (dp[nt][e] - ((e & 1) ? de.y : de.x));
        }
      }
      mma_p_b<T, kM, D>(dv_acc, s, tdo, 0, lane);  // dV += P^T dO
      mma_p_b<T, kM, D>(dk_acc, dp, tq, 0, lane);  // dK += dS^T Q
    }
    __syncthreads();  // the stage just read is refilled next iteration
  }

  // The warp's own K and V rows are read only by the warp: stage dK and dV there.
  stage_rows<T, D>(sk, row0, dk_acc, scale, scale, lane);
  stage_rows<T, D>(sv, row0, dv_acc, 1.f, 1.f, lane);
  __syncwarp();
  store_rows<T, D>(dk + base, sk, row0, wj, seq, lane);
  store_rows<T, D>(dv + base, sv, row0, wj, seq, lane);
}

// Grid (bh, query tiles), the longest first. Shared: Q and dO (kWarps*16 x D), then two stages of K and of V.
template <typename T, int D, int kWarps, int kBlocks>
__global__ void __launch_bounds__(kWarps * 32, kBlocks)
    flash_dq_kernel(const T* __restrict__ q, const T* __restrict__ k, const T* __restrict__ v,
                    const T* __restrict__ dout, const float* __restrict__ lse, const float* __restrict__ delta,
                    T* __restrict__ dq, int seq, float scale, float scale_log2) {
  constexpr int kRows = kWarps * 16, kThreads = kWarps * 32;
  constexpr uint32_t kStage = kStream * D * 2;
  extern __shared__ __align__(128) unsigned char smem[];
  const uint32_t sq = smem_addr(smem), sdo = sq + kRows * D * 2, sk = sdo + kRows * D * 2, sv = sk + 2 * kStage;
  const int warp = static_cast<int>(threadIdx.x) / 32, lane = static_cast<int>(threadIdx.x) % 32;
  const int g = lane >> 2, tig = lane & 3;
  const int64_t bh = blockIdx.x, base = bh * seq * D;
  const int q0 = static_cast<int>(gridDim.y - 1 - blockIdx.y) * kRows;
  const int row0 = warp * 16, wr = q0 + row0;
  const int tiles = (std::min(q0 + kRows, seq) + kStream - 1) / kStream;

  load_tile<kRows, D, kThreads>(sq, q + base, q0, seq);
  load_tile<kRows, D, kThreads>(sdo, dout + base, q0, seq);
  load_tile<kStream, D, kThreads>(sk, k + base, 0, seq);
  load_tile<kStream, D, kThreads>(sv, v + base, 0, seq);
  cp_async_commit();

  float lse2[2], dl[2];  // rows g, g + 8: lse in log2 units, delta (zero past seq: P = 1 meets dO = 0 there)
#pragma unroll
  for (int h = 0; h < 2; ++h) {
    int r = wr + g + 8 * h;
    lse2[h] = r < seq ? lse[bh * seq + r] * kLog2e : 0.f;
    dl[h] = r < seq ? delta[bh * seq + r] : 0.f;
  }
  float dq_acc[D / 8][4] = {};
  for (int t = 0; t < tiles; ++t) {
    if (t + 1 < tiles) {
      const uint32_t next = ((t + 1) & 1) * kStage;
      load_tile<kStream, D, kThreads>(sk + next, k + base, (t + 1) * kStream, seq);
      load_tile<kStream, D, kThreads>(sv + next, v + base, (t + 1) * kStream, seq);
      cp_async_commit();
      cp_async_wait<1>();
    } else {
      cp_async_wait<0>();
    }
    __syncthreads();
    const int j0 = t * kStream;
    if (j0 <= wr + 15) {
      const uint32_t stage = (t & 1) * kStage;
      float s[kStream / 8][4] = {}, dp[kStream / 8][4] = {};
      {
        uint32_t a[D / 16][4];
        load_a_frags<D>(a, sq, row0, lane);
        mma_a_bt<T, kStream, D>(s, a, sk + stage, 0, lane);  // S = Q K^T
        load_a_frags<D>(a, sdo, row0, lane);
        mma_a_bt<T, kStream, D>(dp, a, sv + stage, 0, lane);  // dP = dO V^T
      }
      const bool diag = j0 + kStream - 1 > wr;
#pragma unroll
      for (int nt = 0; nt < kStream / 8; ++nt)
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          float p = exp2_approx(fmaf(s[nt][e], scale_log2, -lse2[e >> 1]));
          if (diag && j0 + nt * 8 + 2 * tig + (e & 1) > wr + g + 8 * (e >> 1)) p = 0.f;
          s[nt][e] = p * (dp[nt][e] - dl[e >> 1]);  // dS / scale
        }
      mma_p_b<T, kStream, D>(dq_acc, s, sk + stage, 0, lane);  // dQ += dS K
    }
    __syncthreads();
  }

  stage_rows<T, D>(sq, row0, dq_acc, scale, scale, lane);  // the warp's own Q rows
  __syncwarp();
  store_rows<T, D>(dq + base, sq, row0, wr, seq, lane);
}

// Launches `kernel` on grid (bh, tiles) with `smem` bytes of dynamic shared memory, raising the limit when needed.
template <typename Kernel, typename... Args>
cudaError_t launch_tiles(Kernel kernel, int64_t bh, int64_t tiles, int threads, size_t smem, cudaStream_t stream,
                         Args... args) {
  if (bh > 0x7fffffff || tiles > 65535) return cudaErrorInvalidConfiguration;
  if (smem > 48 * 1024) {
    cudaError_t e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    if (e != cudaSuccess) return e;
  }
  kernel<<<dim3(static_cast<unsigned>(bh), static_cast<unsigned>(tiles)), threads, smem, stream>>>(args...);
  return cudaGetLastError();
}

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

template <typename T, int D>
cudaError_t forward_for(const T* q, const T* k, const T* v, T* out, float* lse, int64_t bh, int seq, double scale,
                        cudaStream_t stream) {
  constexpr int kWarps = FlashConfig<D>::kForwardWarps;
  size_t smem = (static_cast<size_t>(kWarps) * 16 + 4 * kStream) * D * 2;
  return launch_tiles(flash_forward_kernel<T, D, kWarps, FlashConfig<D>::kForwardBlocks>, bh, ceil_div(seq, kWarps * 16), kWarps * 32, smem, stream,
                      q, k, v, out, lse, seq, static_cast<float>(scale) * kLog2e);
}

template <typename T, int D>
cudaError_t backward_for(const T* q, const T* k, const T* v, const T* out, const T* dout, const float* lse, T* dq,
                         T* dk, T* dv, float* delta, int64_t bh, int seq, double scale, cudaStream_t stream) {
  using C = FlashConfig<D>;
  int64_t rows = bh * seq;
  constexpr int kDeltaThreads = 256;
  flash_delta_kernel<T, D><<<static_cast<unsigned>(ceil_div(rows * (D / 8), kDeltaThreads)), kDeltaThreads, 0,
                             stream>>>(out, dout, delta, rows);
  cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return e;
  const float sc = static_cast<float>(scale), sl2 = sc * kLog2e;
  size_t smem_dkdv = (2 * static_cast<size_t>(C::kDkdvWarps) * 16 + 4 * C::kDkdvRows) * D * 2 + 4 * C::kDkdvRows * 4;
  e = launch_tiles(flash_dkdv_kernel<T, D, C::kDkdvWarps, C::kDkdvBlocks, C::kDkdvRows>, bh, ceil_div(seq, C::kDkdvWarps * 16),
                   C::kDkdvWarps * 32, smem_dkdv, stream, q, k, v, dout, lse, static_cast<const float*>(delta), dk, dv,
                   seq, sc, sl2);
  if (e != cudaSuccess) return e;
  size_t smem_dq = (2 * static_cast<size_t>(C::kDqWarps) * 16 + 4 * kStream) * D * 2;
  return launch_tiles(flash_dq_kernel<T, D, C::kDqWarps, C::kDqBlocks>, bh, ceil_div(seq, C::kDqWarps * 16), C::kDqWarps * 32,
                      smem_dq, stream, q, k, v, dout, lse, static_cast<const float*>(delta), dq, seq, sc, sl2);
}

}  // namespace

template <typename T>
cudaError_t flash_attention_forward(const T* q, const T* k, const T* v, T* out, float* lse, int64_t bh, int64_t seq,
                                    int head_dim, double scale, cudaStream_t stream) {
  if (bh == 0 || seq == 0) return cudaSuccess;
  if (seq > 0x7fffffff || !(scale > 0)) return cudaErrorInvalidValue;
  int t = static_cast<int>(seq);
  if (head_dim == 64) return forward_for<T, 64>(q, k, v, out, lse, bh, t, scale, stream);
  if (head_dim == 128) return forward_for<T, 128>(q, k, v, out, lse, bh, t, scale, stream);
  return cudaErrorInvalidValue;
}

template <typename T>
cudaError_t flash_attention_backward(const T* q, const T* k, const T* v, const T* out, const T* dout, const float* lse,
                                     T* dq, T* dk, T* dv, float* delta, int64_t bh, int64_t seq, int head_dim,
                                     double scale, cudaStream_t stream) {
  if (bh == 0 || seq == 0) return cudaSuccess;
  if (seq > 0x7fffffff || !(scale > 0)) return cudaErrorInvalidValue;
  int t = static_cast<int>(seq);
  if (head_dim == 64) return backward_for<T, 64>(q, k, v, out, dout, lse, dq, dk, dv, delta, bh, t, scale, stream);
  if (head_dim == 128) return backward_for<T, 128>(q, k, v, out, dout, lse, dq, dk, dv, delta, bh, t, scale, stream);
  return cudaErrorInvalidValue;
}

#define MT_FLASH_INSTANTIATE(T)                                                                                   \
  template cudaError_t flash_attention_forward<T>(const T*, const T*, const T*, T*, float*, int64_t, int64_t, int, \
                                                  double, cudaStream_t);                                          \
  template cudaError_t flash_attention_backward<T>(const T*, const T*, const T*, const T*, const T*, const float*, \
                                                   T*, T*, T*, float*, int64_t, int64_t, int, double, cudaStream_t);
MT_FLASH_INSTANTIATE(__nv_bfloat16)
MT_FLASH_INSTANTIATE(__half)
#undef MT_FLASH_INSTANTIATE

}  // namespace mt::gpu
