// Cross-entropy kernels. Forward: a block per row reads each logit once, 16-byte packs from the row's
// first 16-byte boundary (rows of any length and alignment), several packs in flight per thread, with a
// running logsumexp per thread (f32 through the hardware's exp2) merged over the block in a fixed order.
// Backward: a warp or block per row, one pass writing softmax minus the one-hot target, with 16-byte
// packs whenever logits and dlogits are equally misaligned. With gradient: both, a persistent grid that
// reads each row twice, from a shared-memory copy made while the row before was written, or from L2.
#include <algorithm>
#include <cmath>

#include "cross_entropy.h"
#include "device_utils.cuh"
#include "row_launch.cuh"
#include "running_lse.cuh"
#include "tensor_core.cuh"

namespace mt::gpu {

namespace {

constexpr int kForwardThreads = 256;
constexpr int kForwardChunk = 4;  // packs each thread loads before using them
constexpr int kWithGradThreads = 512;   // rows re-read from L2: two blocks per SM
constexpr int kStagedThreads = 1024;    // rows staged in shared memory: one block per SM

// Elements of row x before its first 16-byte boundary (at most vocab); whole packs follow them.
template <typename T>
__device__ __forceinline__ int64_t row_head(const T* x, int64_t vocab) {
  const auto head = static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(x) % 16) % 16 / sizeof(T));
  return head < vocab ? head : vocab;
}

// The logit of target t in row x; 0 for a target outside [0, vocab), whose loss does not use it.
template <typename T>
__device__ __forceinline__ acc_t<T> target_logit(const T* x, int64_t t, int64_t vocab) {
  return t >= 0 && t < vocab ? to_acc(x[t]) : acc_t<T>(0);
}

// Thread 0 after the block's barrier: merges the other warps' running logsumexp into its own, writes the
// row's lse and loss (0 where ignored, NaN for a target outside [0, vocab)) and returns the lse. xt: the
// target's logit (target_logit).
template <typename S, typename A>
__device__ A write_row_loss(RunningLse<A> st, const A* warp_m, const A* warp_s, A xt, int64_t t,
                            int64_t ignore_index, int64_t vocab, S* loss, S* lse_out) {
  for (int k = 1; k < static_cast<int>(blockDim.x / 32); ++k) st.merge(warp_m[k], warp_s[k]);
  const A lse = st.lse();
  *lse_out = static_cast<S>(lse);
  if (t == ignore_index)
    *loss = S(0);
  else if (t < 0 || t >= vocab)
    *loss = static_cast<S>(__int_as_float(0x7fc00000));  // NaN: a bad target must not pass silently
  else
    *loss = static_cast<S>(lse - xt);
  return lse;
}

// Adds this thread's packs of a row's `packs` whole packs from `body` (16-byte aligned), packs threadIdx.x +
// i * blockDim.x, to its running logsumexp, kForwardChunk loads in flight before their first use.
template <typename T>
__device__ __forceinline__ void add_row_packs(RunningLse<acc_t<T>>& st, const T* body, int64_t packs) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>, U = kForwardChunk;
  const int64_t step = blockDim.x;
  int64_t p = threadIdx.x;
  for (; p + (U - 1) * step < packs; p += U * step) {
    Pack<T, V> pk[U];
#pragma unroll
    for (int u = 0; u < U; ++u) pk[u] = load_pack<T, V>(body + (p + u * step) * V);
    A v[U * V];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int j = 0; j < V; ++j) v[u * V + j] = to_acc(pk[u].v[j]);
    st.add(v);
  }
  for (; p < packs; p += step) {
    Pack<T, V> pk = load_pack<T, V>(body + p * V);
    A v[V];
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = to_acc(pk.v[j]);
    st.add(v);
  }
}

template <typename T, typename S>
__global__ void __launch_bounds__(kForwardThreads)
    cross_entropy_forward_kernel(const T* __restrict__ logits, const int64_t* __restrict__ targets,
                                 int64_t ignore_index, S* __restrict__ losses, S* __restrict__ lse_out,
                                 int64_t vocab) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  __shared__ A warp_m[32], warp_s[32];
  int64_t row = blockIdx.x;
  const T* x = logits + row * vocab;
  // head elements before the first 16-byte boundary, `packs` whole packs, then fewer than V elements.
  int64_t head = row_head(x, vocab);
  int64_t packs = (vocab - head) / V;
  int64_t tail = head + packs * V;
  const T* body = x + head;
  RunningLse<A> st;
  add_row_packs(st, body, packs);
  if (threadIdx.x < head) {
    A v[1] = {to_acc(x[threadIdx.x])};
    st.add(v);
  }
  if (tail + threadIdx.x < vocab) {
    A v[1] = {to_acc(x[tail + threadIdx.x])};
    st.add(v);
  }
  st.warp_merge();
  int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    warp_m[warp] = st.m;
    warp_s[warp] = st.s;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const int64_t t = targets[row];
    write_row_loss(st, warp_m, warp_s, target_logit(x, t, vocab), t, ignore_index, vocab, losses + row,
                   lse_out + row);
  }
}

// Note [Fused cross-entropy streams rows through shared memory or L2]
// The loss and softmax - onehot over the logits need the row's logsumexp before the first element can be
// written, so each row is read twice; it should still cost one DRAM read and one write. The first kernel
// kept its row in shared memory, a block per row (~100 KB for a 50K bf16 vocabulary: two blocks per SM).
// A block loaded its row with 32 KB in flight, synchronised and reduced, then stored the row, loading
// nothing meanwhile, and the two blocks of an SM fell into step: 1.133 ms = 68% of copy bandwidth on an
// H200 for (16384, 50304) bf16, where a read alone (the forward kernel) ran at 104% and a read + write
// (the backward kernel) at 91%. The goal is the backward's ~0.85 ms.
// Now a persistent grid walks the rows (blockIdx.x, then + gridDim.x, ...), in one of two ways:
// - Staged, where a row has more than kForwardChunk packs for each of kWithGradThreads threads and two
//   rows fit in a block's shared memory (bf16 and f16 vocabularies of 16K to 58K, f32 of 8K to 29K): one
//   block per SM keeps two row buffers and copies its next row into one with cp.async while it reduces
//   the other and writes the gradient from it. So an SM keeps a whole row (~100 KB) of loads in flight,
//   through its barriers and stores too.
// - Otherwise, from L2: blocks read their row from global memory twice, the second pass finding it in L2
//   (and writing over the lines it just read), since the grid holds no more rows at once than fill about
//   half of L2 (one 50K f32 row per SM on an H100). Rows of any length take this way.
// Each thread adds and then writes the same packs (threadIdx.x + i * blockDim.x): pass 1 adds them to its
// running logsumexp (as the forward kernel); after a barrier thread 0 merges the warps' states and writes
// the loss and lse; after a second one pass 2 writes softmax - onehot over them. Every element is read
// and written by one thread, and thread 0 reads x[target] before pass 1, so no logit is overwritten
// while another thread still needs it. A staged pack is copied and read by the same thread: its own
// cp.async wait orders the copy before its reads, and its program order those reads before the copy of
// the row after next into the same buffer. The next row rewrites warp_m and warp_s only after the
// second barrier (thread 0 has read them) and row_lse only after the next first one (all have read it).
template <typename T, typename S, bool Staged>
__global__ void __launch_bounds__(Staged ? kStagedThreads : kWithGradThreads, Staged ? 1 : 2)
    cross_entropy_with_grad_kernel(T* __restrict__ logits, const int64_t* __restrict__ targets,
                                   int64_t ignore_index, S* __restrict__ losses, S* __restrict__ lse_out,
                                   int64_t rows, int64_t vocab) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>, U = kForwardChunk;
  extern __shared__ __align__(16) unsigned char with_grad_smem[];  // Staged: two buffers of `cap` packs
  Pack<T, V>* staged = reinterpret_cast<Pack<T, V>*>(with_grad_smem);
  __shared__ A warp_m[32], warp_s[32], row_lse;
  const int64_t step = blockDim.x, cap = vocab / V;  // cap: the most whole packs of a row at any alignment
  // Copies row r's whole packs into buffer b as one cp.async group (an empty one past the last row).
  auto stage = [&](int64_t r, int b) {
    if (r < rows) {
      const T* xr = logits + r * vocab;
      const int64_t h = row_head(xr, vocab), n = (vocab - h) / V;
      for (int64_t p = threadIdx.x; p < n; p += step)
        cp_async_16(smem_addr(staged + b * cap + p), xr + h + p * V, 16);
    }
    cp_async_commit();
  };
  if constexpr (Staged) stage(blockIdx.x, 0);
  int b = 0;  // Staged: the buffer of this row
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x, b ^= 1) {
    T* x = logits + row * vocab;
    const int64_t head = row_head(x, vocab), packs = (vocab - head) / V, tail = head + packs * V;
    T* body = x + head;
    const int64_t t = targets[row];
    const A xt = threadIdx.x == 0 ? target_logit(x, t, vocab) : A(0);
    // The fewer than V elements before the first 16-byte boundary and after the last whole pack stay in
    // registers of the first threads.
    const bool has_head = threadIdx.x < head, has_tail = tail + threadIdx.x < vocab;
    const T head_v = has_head ? x[threadIdx.x] : T(0.0f), tail_v = has_tail ? x[tail + threadIdx.x] : T(0.0f);
    if constexpr (Staged) {
      __syncwarp();  // keeps the compiler from moving the last row's reads of buffer b ^ 1 past the copy over it
      stage(row + gridDim.x, b ^ 1);
      cp_async_wait<1>();  // this thread's copies of this row have landed
    }
    const T* src = Staged ? reinterpret_cast<const T*>(staged + b * cap) : body;  // the row's whole packs
    RunningLse<A> st;
    add_row_packs(st, src, packs);
    if (has_head) {
      A v[1] = {to_acc(head_v)};
      st.add(v);
    }
    if (has_tail) {
      A v[1] = {to_acc(tail_v)};
      st.add(v);
    }
    st.warp_merge();
    const int warp = threadIdx.x / 32;
    if (threadIdx.x % 32 == 0) {
      warp_m[warp] = st.m;
      warp_s[warp] = st.s;
    }
    __syncthreads();
    if (threadIdx.x == 0)
      row_lse = write_row_loss(st, warp_m, warp_s, xt, t, ignore_index, vocab, losses + row, lse_out + row);
    __syncthreads();
    const bool ignored = t == ignore_index;
    const A lse = row_lse;
    auto grad = [&](T v, bool is_target) {
      return from_acc<T>(ignored ? A(0) : exp_acc(to_acc(v) - lse) - (is_target ? A(1) : A(0)));
    };
    // The target's pack (-1: in the head, the tail or nowhere) and index in it: one compare a pack and a
    // 32-bit one an element, where 64-bit columns took more registers than the launch bound leaves.
    const int64_t tb = t - head;
    const int64_t tq = tb >= 0 && tb < packs * V ? tb / V : -1;
    const int tj = static_cast<int>(tb - tq * V);
    auto write = [&](const Pack<T, V>& v, int64_t q) {
      const int jt = q == tq ? tj : -1;
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = grad(v.v[j], j == jt);
      store_pack<T, V>(body + q * V, r);
    };
    int64_t q = threadIdx.x;
    for (; q + (U - 1) * step < packs; q += U * step) {
      Pack<T, V> pk[U];
#pragma unroll
      for (int u = 0; u < U; ++u) pk[u] = load_pack<T, V>(src + (q + u * step) * V);
#pragma unroll
      for (int u = 0; u < U; ++u) write(pk[u], q + u * step);
    }
    for (; q < packs; q += step) write(load_pack<T, V>(src + q * V), q);
    if (has_head) x[threadIdx.x] = grad(head_v, threadIdx.x == t);
    if (has_tail) x[tail + threadIdx.x] = grad(tail_v, tail + threadIdx.x == t);
  }
}

// dlogits may be the logits themselves (each element is read, then written, by one thread).
// With V > 1, logits and dlogits are equally misaligned (their distance is a multiple of 16 bytes): each
// row's elements before its first 16-byte boundary and after its last whole pack are done one by one.
template <typename T, typename S, int V>
__global__ void cross_entropy_backward_kernel(const T* logits, const int64_t* __restrict__ targets,
                                              int64_t ignore_index, const S* __restrict__ lse_in,
                                              const S* __restrict__ grad_losses, T* dlogits,
                                              int64_t rows, int64_t vocab) {
  using A = acc_t<T>;
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= rows) return;
  const T* x = logits + row * vocab;
  T* dx = dlogits + row * vocab;
  int64_t t = targets[row];
  bool ignored = t == ignore_index;
  A g = ignored ? A(0) : grad_losses ? static_cast<A>(grad_losses[row]) : A(1);
  A lse = static_cast<A>(lse_in[row]);
  auto grad = [&](T v, int64_t c) {
    return from_acc<T>(ignored ? A(0) : g * (exp_acc(to_acc(v) - lse) - (c == t ? A(1) : A(0))));
  };
  int64_t head = V == 1 ? 0 : static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(x) % 16) % 16 / sizeof(T));
  if (head > vocab) head = vocab;
  int64_t packs = (vocab - head) / V, tail = head + packs * V;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    int64_t c0 = head + p * V;
    Pack<T, V> v = load_pack<T, V>(x + c0), r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = grad(v.v[j], c0 + j);
    store_pack<T, V>(dx + c0, r);
  }
  for (int64_t c = threadIdx.x; c < head; c += blockDim.x) dx[c] = grad(x[c], c);
  for (int64_t c = tail + threadIdx.x; c < vocab; c += blockDim.x) dx[c] = grad(x[c], c);
}

}  // namespace

template <typename T, typename S>
cudaError_t cross_entropy_forward(const T* logits, const int64_t* targets, int64_t ignore_index, S* losses, S* lse,
                                  int64_t rows, int64_t vocab, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  // Enough threads for kForwardChunk packs each per pass over the row, at least a warp.
  int64_t per_pass = (vocab / kPack<T> + kForwardChunk - 1) / kForwardChunk;
  int threads = 32;
  while (threads < kForwardThreads && threads < per_pass) threads *= 2;
  cross_entropy_forward_kernel<T, S><<<static_cast<unsigned>(rows), threads, 0, stream>>>(logits, targets,
                                                                                        ignore_index, losses, lse,
                                                                                        vocab);
  return cudaGetLastError();
}

template <typename T, typename S>
cudaError_t cross_entropy_backward(const T* logits, const int64_t* targets, int64_t ignore_index, const S* lse,
                                   const S* grad_losses, T* dlogits, int64_t rows, int64_t vocab,
                                   cudaStream_t stream) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = (reinterpret_cast<uintptr_t>(logits) - reinterpret_cast<uintptr_t>(dlogits)) % 16 == 0;
  RowLaunch l = row_launch(rows, vec ? vocab / V : vocab);
  if (vec)
    cross_entropy_backward_kernel<T, S, V><<<l.grid, l.block, 0, stream>>>(logits, targets, ignore_index, lse,
                                                                        grad_losses, dlogits, rows, vocab);
  else
    cross_entropy_backward_kernel<T, S, 1><<<l.grid, l.block, 0, stream>>>(logits, targets, ignore_index, lse,
                                                                        grad_losses, dlogits, rows, vocab);
  return cudaGetLastError();
}

template <typename T, typename S>
cudaError_t cross_entropy_with_grad(T* logits, const int64_t* targets, int64_t ignore_index, S* losses, S* lse,
                                    int64_t rows, int64_t vocab, cudaStream_t stream) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  // Note [Fused cross-entropy streams rows through shared memory or L2]
  int device = 0, sms = 0, l2 = 0, smem_limit = 0, resident = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&l2, cudaDevAttrL2CacheSize, device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&smem_limit, cudaDevAttrMaxSharedMemoryPerBlockOptin, device);
  if (e != cudaSuccess) return e;
  const int64_t per_pass = (vocab / kPack<T> + kForwardChunk - 1) / kForwardChunk;
  const size_t staged_smem = 2 * static_cast<size_t>(vocab / kPack<T>) * 16;
  if (per_pass > kWithGradThreads && staged_smem <= static_cast<size_t>(smem_limit)) {
    auto kernel = cross_entropy_with_grad_kernel<T, S, true>;
    // Refused where the kernel's static shared memory leaves less than two rows: those take L2 below.
    if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(staged_smem)) ==
        cudaSuccess) {
      e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, kStagedThreads, staged_smem);
      if (e != cudaSuccess) return e;
      const int64_t blocks = std::min<int64_t>(rows, int64_t{std::max(resident, 1)} * sms);
      kernel<<<static_cast<unsigned>(blocks), kStagedThreads, staged_smem, stream>>>(logits, targets, ignore_index,
                                                                                     losses, lse, rows, vocab);
      return cudaGetLastError();
    }
    cudaGetLastError();  // clear the refusal
  }
  int threads = 32;
  while (threads < kWithGradThreads && threads < per_pass) threads *= 2;
  auto kernel = cross_entropy_with_grad_kernel<T, S, false>;
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, threads, 0);
  if (e != cudaSuccess) return e;
  // Rows in flight fill about half of L2, the same number on each SM (the nearest, at least one, at most
  // as many blocks as can be resident).
  const double fit = 0.5 * l2 / (static_cast<double>(vocab) * sizeof(T) * sms);
  const int64_t per_sm = std::clamp<int64_t>(std::llround(fit), 1, std::max(resident, 1));
  const int64_t blocks = std::min(rows, per_sm * sms);
  kernel<<<static_cast<unsigned>(blocks), threads, 0, stream>>>(logits, targets, ignore_index, losses, lse, rows,
                                                                 vocab);
  return cudaGetLastError();
}

#define MT_CE_INSTANTIATE(T, S)                                                                                  \
  template cudaError_t cross_entropy_forward<T, S>(const T*, const int64_t*, int64_t, S*, S*, int64_t, int64_t,     \
                                                   cudaStream_t);                                                 \
  template cudaError_t cross_entropy_backward<T, S>(const T*, const int64_t*, int64_t, const S*, const S*, T*,      \
                                                    int64_t, int64_t, cudaStream_t);                \
  template cudaError_t cross_entropy_with_grad<T, S>(T*, const int64_t*, int64_t, S*, S*, int64_t, int64_t,        \
                                                     cudaStream_t);
MT_CE_INSTANTIATE(float, float)
MT_CE_INSTANTIATE(double, double)
MT_CE_INSTANTIATE(double, float)
MT_CE_INSTANTIATE(__nv_bfloat16, float)
MT_CE_INSTANTIATE(__half, float)
#undef MT_CE_INSTANTIATE

}  // namespace mt::gpu
