// Distillation-loss kernels. Forward: a block per row reads each student and teacher logit once (16-byte
// packs from the row's first 16-byte boundary when both rows are equally misaligned, else one by one),
// keeping a running logsumexp of each and the teacher-weighted sum of (t - s) / T, merged over the block
// in a fixed order. Backward: a warp or block per row, one pass writing (p_s - p_t) * grad / T.
#include "device_utils.cuh"
#include "distillation.h"
#include "fast_exp.cuh"
#include "row_launch.cuh"
#include "running_lse.cuh"

namespace mt::gpu {

namespace {

constexpr int kForwardThreads = 256;
constexpr int kForwardChunk = 2;  // packs of each input a thread loads before using them

// Adds N student and teacher values to the running states: the teacher's weights are (t - s) / T, and a
// term whose teacher probability is 0 adds nothing (no -inf - -inf = NaN from masked logits).
template <typename A, int N>
__device__ __forceinline__ void add_values(RunningLse<A>& st_s, RunningLse<A>& st_t, const A (&vs)[N],
                                           const A (&vt)[N], A inv_t) {
  A w[N];
#pragma unroll
  for (int j = 0; j < N; ++j) w[j] = vt[j] == neg_inf<A>() ? A(0) : (vt[j] - vs[j]) * inv_t;
  st_s.add(vs);
  st_t.add(vt, w);
}

template <typename T, typename S, int V>
__global__ void __launch_bounds__(kForwardThreads)
    distillation_forward_kernel(const T* __restrict__ student, const T* __restrict__ teacher, acc_t<T> inv_t,
                                S* __restrict__ kl, S* __restrict__ lse_s, S* __restrict__ lse_t, int64_t vocab) {
  using A = acc_t<T>;
  constexpr int U = kForwardChunk;
  __shared__ A warp_state[5][32];  // student m, s; teacher m, s, ws
  int64_t row = blockIdx.x;
  const T* xs = student + row * vocab;
  const T* xt = teacher + row * vocab;
  // head elements before the first 16-byte boundary, `packs` whole packs, then fewer than V elements.
  int64_t head = V == 1 ? 0 : static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(xs) % 16) % 16 / sizeof(T));
  if (head > vocab) head = vocab;
  int64_t packs = (vocab - head) / V;
  int64_t tail = head + packs * V;
  RunningLse<A> st_s(inv_t), st_t(inv_t);
  int64_t p = threadIdx.x;
  for (; p + (U - 1) * static_cast<int64_t>(blockDim.x) < packs; p += U * static_cast<int64_t>(blockDim.x)) {
    Pack<T, V> ps[U], pt[U];
#pragma unroll
    for (int u = 0; u < U; ++u) {
      int64_t c = head + (p + u * static_cast<int64_t>(blockDim.x)) * V;
      ps[u] = load_pack<T, V>(xs + c);
      pt[u] = load_pack<T, V>(xt + c);
    }
    A vs[U * V], vt[U * V];
#pragma unroll
    for (int u = 0; u < U; ++u)
#pragma unroll
      for (int j = 0; j < V; ++j) {
        vs[u * V + j] = to_acc(ps[u].v[j]);
        vt[u * V + j] = to_acc(pt[u].v[j]);
      }
    add_values(st_s, st_t, vs, vt, inv_t);
  }
  for (; p < packs; p += blockDim.x) {
    Pack<T, V> ps = load_pack<T, V>(xs + head + p * V), pt = load_pack<T, V>(xt + head + p * V);
    A vs[V], vt[V];
#pragma unroll
    for (int j = 0; j < V; ++j) {
      vs[j] = to_acc(ps.v[j]);
      vt[j] = to_acc(pt.v[j]);
    }
    add_values(st_s, st_t, vs, vt, inv_t);
  }
  for (int64_t c = threadIdx.x; c < head; c += blockDim.x) {
    A vs[1] = {to_acc(xs[c])}, vt[1] = {to_acc(xt[c])};
    add_values(st_s, st_t, vs, vt, inv_t);
  }
  for (int64_t c = tail + threadIdx.x; c < vocab; c += blockDim.x) {
    A vs[1] = {to_acc(xs[c])}, vt[1] = {to_acc(xt[c])};
    add_values(st_s, st_t, vs, vt, inv_t);
  }
  st_s.warp_merge();
  st_t.warp_merge();
  int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    warp_state[0][warp] = st_s.m;
    warp_state[1][warp] = st_s.s;
    warp_state[2][warp] = st_t.m;
    warp_state[3][warp] = st_t.s;
    warp_state[4][warp] = st_t.ws;
  }
  __syncthreads();
  if (threadIdx.x != 0) return;
  for (int k = 1; k < static_cast<int>(blockDim.x / 32); ++k) {
    st_s.merge(warp_state[0][k], warp_state[1][k]);
    st_t.merge(warp_state[2][k], warp_state[3][k], warp_state[4][k]);
  }
  A ls = st_s.lse(), lt = st_t.lse();
  lse_s[row] = static_cast<S>(ls);
  lse_t[row] = static_cast<S>(lt);
  kl[row] = static_cast<S>(st_t.weighted_mean() - lt + ls);
}

// With V > 1, student, teacher and dstudent are equally misaligned (their distances are multiples of 16
// bytes): each row's elements before its first 16-byte boundary and after its last whole pack go one by one.
template <typename T, typename S, int V>
__global__ void distillation_backward_kernel(const T* __restrict__ student, const T* __restrict__ teacher,
                                             acc_t<T> inv_t, const S* __restrict__ lse_s,
                                             const S* __restrict__ lse_t, const S* __restrict__ grad_kl,
                                             T* __restrict__ dstudent, int64_t rows, int64_t vocab) {
  using A = acc_t<T>;
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= rows) return;
  const T* xs = student + row * vocab;
  const T* xt = teacher + row * vocab;
  T* ds = dstudent + row * vocab;
  A g = static_cast<A>(grad_kl[row]) * inv_t, ls = static_cast<A>(lse_s[row]), lt = static_cast<A>(lse_t[row]);
  auto grad = [&](T s, T t) {
    return from_acc<T>(g * (exp_fast(fma_acc(to_acc(s), inv_t, -ls)) - exp_fast(fma_acc(to_acc(t), inv_t, -lt))));
  };
  int64_t head = V == 1 ? 0 : static_cast<int64_t>((16 - reinterpret_cast<uintptr_t>(xs) % 16) % 16 / sizeof(T));
  if (head > vocab) head = vocab;
  int64_t packs = (vocab - head) / V, tail = head + packs * V;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    int64_t c0 = head + p * V;
    Pack<T, V> s = load_pack<T, V>(xs + c0), t = load_pack<T, V>(xt + c0), r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = grad(s.v[j], t.v[j]);
    store_pack<T, V>(ds + c0, r);
  }
  for (int64_t c = threadIdx.x; c < head; c += blockDim.x) ds[c] = grad(xs[c], xt[c]);
  for (int64_t c = tail + threadIdx.x; c < vocab; c += blockDim.x) ds[c] = grad(xs[c], xt[c]);
}

bool same_misalignment(const void* a, const void* b) {
  return (reinterpret_cast<uintptr_t>(a) - reinterpret_cast<uintptr_t>(b)) % 16 == 0;
}

}  // namespace

template <typename T, typename S>
cudaError_t distillation_forward(const T* student, const T* teacher, double inv_t, S* kl, S* lse_s, S* lse_t,
                                 int64_t rows, int64_t vocab, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = same_misalignment(student, teacher);
  // Enough threads for kForwardChunk packs each per pass over the row, at least a warp.
  int64_t per_pass = ((vec ? vocab / V : vocab) + kForwardChunk - 1) / kForwardChunk;
  int threads = 32;
  while (threads < kForwardThreads && threads < per_pass) threads *= 2;
  auto k = static_cast<acc_t<T>>(inv_t);
  auto grid = static_cast<unsigned>(rows);
  if (vec)
    distillation_forward_kernel<T, S, V><<<grid, threads, 0, stream>>>(student, teacher, k, kl, lse_s, lse_t, vocab);
  else
    distillation_forward_kernel<T, S, 1><<<grid, threads, 0, stream>>>(student, teacher, k, kl, lse_s, lse_t, vocab);
  return cudaGetLastError();
}

template <typename T, typename S>
cudaError_t distillation_backward(const T* student, const T* teacher, double inv_t, const S* lse_s, const S* lse_t,
                                  const S* grad_kl, T* dstudent, int64_t rows, int64_t vocab, cudaStream_t stream) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = same_misalignment(student, teacher) && same_misalignment(student, dstudent);
  RowLaunch l = row_launch(rows, vec ? vocab / V : vocab);
  auto k = static_cast<acc_t<T>>(inv_t);
  if (vec)
    distillation_backward_kernel<T, S, V><<<l.grid, l.block, 0, stream>>>(student, teacher, k, lse_s, lse_t, grad_kl,
                                                                         dstudent, rows, vocab);
  else
    distillation_backward_kernel<T, S, 1><<<l.grid, l.block, 0, stream>>>(student, teacher, k, lse_s, lse_t, grad_kl,
                                                                         dstudent, rows, vocab);
  return cudaGetLastError();
}

#define MT_KD_INSTANTIATE(T, S)                                                                                    \
  template cudaError_t distillation_forward<T, S>(const T*, const T*, double, S*, S*, S*, int64_t, int64_t,         \
                                                  cudaStream_t);                                                    \
  template cudaError_t distillation_backward<T, S>(const T*, const T*, double, const S*, const S*, const S*, T*,    \
                                                   int64_t, int64_t, cudaStream_t);
MT_KD_INSTANTIATE(float, float)
MT_KD_INSTANTIATE(double, double)
MT_KD_INSTANTIATE(double, float)
MT_KD_INSTANTIATE(__nv_bfloat16, float)
MT_KD_INSTANTIATE(__half, float)
#undef MT_KD_INSTANTIATE

}  // namespace mt::gpu
