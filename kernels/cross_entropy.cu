// Cross-entropy kernels: a warp or block per row. Forward makes one pass over the logits with an
// online max / sum of exponentials; backward makes one pass writing softmax minus the one-hot target.
#include "cross_entropy.h"
#include "device_utils.cuh"
#include "row_launch.cuh"

namespace mt::gpukernels {

namespace {

template <typename T, typename S, int V>
__global__ void cross_entropy_forward_kernel(const T* __restrict__ logits, const int64_t* __restrict__ targets,
                                             int64_t ignore_index, S* __restrict__ losses,
                                             S* __restrict__ lse_out, int64_t rows, int64_t vocab) {
  using A = acc_t<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  const T* x = logits + (active ? row : 0) * vocab;
  int64_t packs = vocab / V;
  A m = neg_inf<A>(), s = 0;
  if (active)
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> v = load_pack<T, V>(x + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A e = to_acc(v.v[j]);
        if (e > m) {
          s = (m == neg_inf<A>() ? A(0) : s * exp_acc(m - e)) + A(1);
          m = e;
        } else if (m != neg_inf<A>()) {  // with m = -inf, e is -inf too and adds nothing
          s += exp_acc(e - m);
        }
      }
    }
  A row_max = row_allreduce(m, MaxOp{}, scratch);
  A mine = m == neg_inf<A>() ? A(0) : s * exp_acc(m - row_max);
  A row_sum = row_allreduce(mine, SumOp{}, scratch);
  if (!active || threadIdx.x != 0) return;
  A lse = row_max + log_acc(row_sum);
  lse_out[row] = static_cast<S>(lse);
  int64_t t = targets[row];
  if (t == ignore_index)
    losses[row] = S(0);
  else if (t < 0 || t >= vocab)
    losses[row] = static_cast<S>(__int_as_float(0x7fc00000));  // NaN: a bad target must not pass silently
  else
    losses[row] = static_cast<S>(lse - to_acc(x[t]));
}

template <typename T, typename S, int V>
__global__ void cross_entropy_backward_kernel(const T* __restrict__ logits, const int64_t* __restrict__ targets,
                                              int64_t ignore_index, const S* __restrict__ lse_in,
                                              const S* __restrict__ grad_losses, T* __restrict__ dlogits,
                                              int64_t rows, int64_t vocab) {
  using A = acc_t<T>;
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  if (row >= rows) return;
  const T* x = logits + row * vocab;
  T* dx = dlogits + row * vocab;
  int64_t t = targets[row];
  bool ignored = t == ignore_index;
  A g = ignored ? A(0) : static_cast<A>(grad_losses[row]);
  A lse = static_cast<A>(lse_in[row]);
  int64_t packs = vocab / V;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    Pack<T, V> v = load_pack<T, V>(x + p * V), r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      int64_t c = p * V + j;
      A d = ignored ? A(0) : g * (exp_acc(to_acc(v.v[j]) - lse) - (c == t ? A(1) : A(0)));
      r.v[j] = from_acc<T>(d);
    }
    store_pack<T, V>(dx + p * V, r);
  }
}

}  // namespace

template <typename T, typename S>
cudaError_t cross_entropy_forward(const T* logits, const int64_t* targets, int64_t ignore_index, S* losses, S* lse,
                                  int64_t rows, int64_t vocab, cudaStream_t stream) {
  if (rows == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = vocab % V == 0 && aligned16(logits);
  RowLaunch l = row_launch(rows, vec ? vocab / V : vocab);
  if (vec)
    cross_entropy_forward_kernel<T, S, V><<<l.grid, l.block, 0, stream>>>(logits, targets, ignore_index, losses, lse,
                                                                       rows, vocab);
  else
    cross_entropy_forward_kernel<T, S, 1><<<l.grid, l.block, 0, stream>>>(logits, targets, ignore_index, losses, lse,
                                                                       rows, vocab);
  return cudaGetLastError();
}

template <typename T, typename S>
cudaError_t cross_entropy_backward(const T* logits, const int64_t* targets, int64_t ignore_index, const S* lse,
                                   const S* grad_losses, T* dlogits, int64_t rows, int64_t vocab,
                                   cudaStream_t stream) {
  if (rows == 0 || vocab == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = vocab % V == 0 && aligned16(logits) && aligned16(dlogits);
  RowLaunch l = row_launch(rows, vec ? vocab / V : vocab);
  if (vec)
    cross_entropy_backward_kernel<T, S, V><<<l.grid, l.block, 0, stream>>>(logits, targets, ignore_index, lse,
                                                                        grad_losses, dlogits, rows, vocab);
  else
    cross_entropy_backward_kernel<T, S, 1><<<l.grid, l.block, 0, stream>>>(logits, targets, ignore_index, lse,
                                                                        grad_losses, dlogits, rows, vocab);
  return cudaGetLastError();
}

#define MT_CE_INSTANTIATE(T, S)                                                                                  \
  template cudaError_t cross_entropy_forward<T, S>(const T*, const int64_t*, int64_t, S*, S*, int64_t, int64_t,     \
                                                   cudaStream_t);                                                 \
  template cudaError_t cross_entropy_backward<T, S>(const T*, const int64_t*, int64_t, const S*, const S*, T*,      \
                                                    int64_t, int64_t, cudaStream_t);
MT_CE_INSTANTIATE(float, float)
MT_CE_INSTANTIATE(double, double)
MT_CE_INSTANTIATE(double, float)
MT_CE_INSTANTIATE(__nv_bfloat16, float)
MT_CE_INSTANTIATE(__half, float)
#undef MT_CE_INSTANTIATE

}  // namespace mt::gpukernels
