// Cross-entropy kernels. Forward: a block per row reads each logit once, 16-byte packs from the row's
// first 16-byte boundary (rows of any length and alignment), several packs in flight per thread, with a
// running logsumexp per thread (f32 through the hardware's exp2) merged over the block in a fixed order.
// Backward: a warp or block per row, one pass writing softmax minus the one-hot target, with 16-byte
// packs whenever logits and dlogits are equally misaligned. With gradient: both, a block per row that
// keeps its row in shared memory between the logsumexp and the write.
#include "cross_entropy.h"
#include "device_utils.cuh"
#include "row_launch.cuh"
#include "running_lse.cuh"

namespace mt::gpu {

namespace {

constexpr int kForwardThreads = 256;
constexpr int kForwardChunk = 4;  // packs each thread loads before using them
constexpr int kWithGradThreads = 512;

// Thread 0 after the block's barrier: merges the other warps' running logsumexp into its own, writes the
// row's lse and loss (0 where ignored, NaN for a target outside [0, vocab)) and returns the lse.
template <typename T, typename S, typename A>
__device__ A write_row_loss(RunningLse<A> st, const A* warp_m, const A* warp_s, const T* x, int64_t t,
                            int64_t ignore_index, int64_t vocab, S* loss, S* lse_out) {
  for (int k = 1; k < static_cast<int>(blockDim.x / 32); ++k) st.merge(warp_m[k], warp_s[k]);
  const A lse = st.lse();
  *lse_out = static_cast<S>(lse);
  if (t == ignore_index)
    *loss = S(0);
  else if (t < 0 || t >= vocab)
    *loss = static_cast<S>(__int_as_float(0x7fc00000));  // NaN: a bad target must not pass silently
  else
    *loss = static_cast<S>(lse - to_acc(x[t]));
  return lse;
}

// Adds this thread's packs (threadIdx.x + i * blockDim.x) of a row's `packs` whole packs at `body` (16-byte
// aligned) to its running logsumexp, kForwardChunk loads in flight before their first use.
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
  int64_t head = static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(x) % 16) % 16 / sizeof(T));
  if (head > vocab) head = vocab;
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
  if (threadIdx.x == 0)
    write_row_loss(st, warp_m, warp_s, x, targets[row], ignore_index, vocab, losses + row, lse_out + row);
}

// One block per row, the row kept in shared memory: each thread loads its packs once, adds them to its
// running logsumexp and keeps them; after the block's logsumexp it overwrites the same packs with
// softmax - onehot. So the logits are read once and written once. Two blocks fit on an SM for a 50K
// vocabulary in bf16 (100 KB of shared memory each): one streams its row while the other reduces.
template <typename T, typename S>
__global__ void __launch_bounds__(kWithGradThreads, 2)
    cross_entropy_with_grad_kernel(T* __restrict__ logits, const int64_t* __restrict__ targets,
                                   int64_t ignore_index, S* __restrict__ losses, S* __restrict__ lse_out,
                                   int64_t vocab) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>, U = kForwardChunk;
  extern __shared__ __align__(16) unsigned char with_grad_smem[];
  Pack<T, V>* kept = reinterpret_cast<Pack<T, V>*>(with_grad_smem);  // the row's whole packs
  __shared__ A warp_m[32], warp_s[32], row_lse;
  const int64_t row = blockIdx.x;
  T* x = logits + row * vocab;
  int64_t head = static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(x) % 16) % 16 / sizeof(T));
  if (head > vocab) head = vocab;
  const int64_t packs = (vocab - head) / V, tail = head + packs * V;
  T* body = x + head;
  const int64_t step = blockDim.x;
  RunningLse<A> st;
  int64_t p = threadIdx.x;
  for (; p + (U - 1) * step < packs; p += U * step) {
    Pack<T, V> pk[U];
#pragma unroll
    for (int u = 0; u < U; ++u) pk[u] = load_pack<T, V>(body + (p + u * step) * V);
    A v[U * V];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      kept[p + u * step] = pk[u];
#pragma unroll
      for (int j = 0; j < V; ++j) v[u * V + j] = to_acc(pk[u].v[j]);
    }
    st.add(v);
  }
  for (; p < packs; p += step) {
    Pack<T, V> pk = load_pack<T, V>(body + p * V);
    kept[p] = pk;
    A v[V];
#pragma unroll
    for (int j = 0; j < V; ++j) v[j] = to_acc(pk.v[j]);
    st.add(v);
  }
  // The fewer than V elements before the first 16-byte boundary and after the last whole pack stay in
  // registers of the first threads.
  const bool has_head = threadIdx.x < head, has_tail = tail + threadIdx.x < vocab;
  const T head_v = has_head ? x[threadIdx.x] : T(0.0f), tail_v = has_tail ? x[tail + threadIdx.x] : T(0.0f);
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
  const int64_t t = targets[row];
  if (threadIdx.x == 0)  // no thread writes the row before the barrier below: x[t] is still the logit
    row_lse = write_row_loss(st, warp_m, warp_s, x, t, ignore_index, vocab, losses + row, lse_out + row);
  __syncthreads();
  const bool ignored = t == ignore_index;
  const A lse = row_lse;
  auto grad = [&](T v, int64_t c) {
    return from_acc<T>(ignored ? A(0) : exp_acc(to_acc(v) - lse) - (c == t ? A(1) : A(0)));
  };
  for (int64_t q = threadIdx.x; q < packs; q += step) {
    const Pack<T, V> v = kept[q];
    Pack<T, V> r;
    const int64_t c0 = head + q * V;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = grad(v.v[j], c0 + j);
    store_pack<T, V>(body + q * V, r);
  }
  if (has_head) x[threadIdx.x] = grad(head_v, threadIdx.x);
  if (has_tail) x[tail + threadIdx.x] = grad(tail_v, tail + threadIdx.x);
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
  // Shared memory for the whole packs of a row at any alignment. A row longer than a block's shared memory
  // (f64 over ~28K, f32 over ~57K) takes the forward kernel, then the backward one with gradient 1.
  const size_t smem = static_cast<size_t>(vocab / kPack<T>) * 16;
  auto kernel = cross_entropy_with_grad_kernel<T, S>;
  if (cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem)) !=
      cudaSuccess) {
    cudaGetLastError();  // clear the refusal
    cudaError_t e = cross_entropy_forward<T, S>(logits, targets, ignore_index, losses, lse, rows, vocab, stream);
    if (e != cudaSuccess) return e;
    return cross_entropy_backward<T, S>(logits, targets, ignore_index, lse, nullptr, logits, rows, vocab, stream);
  }
  // All of L1 as shared memory, so that two rows of a 50K bf16 vocabulary fit on an SM at once.
  cudaError_t e =
      cudaFuncSetAttribute(kernel, cudaFuncAttributePreferredSharedMemoryCarveout, cudaSharedmemCarveoutMaxShared);
  if (e != cudaSuccess) return e;
  int64_t per_pass = (vocab / kPack<T> + kForwardChunk - 1) / kForwardChunk;
  int threads = 32;
  while (threads < kWithGradThreads && threads < per_pass) threads *= 2;
  kernel<<<static_cast<unsigned>(rows), threads, smem, stream>>>(logits, targets, ignore_index, losses, lse, vocab);
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
