// Softmax / log_softmax over rows. Rows of at most 128 whole 16-byte packs take one warp each on the
// cp.async row pipeline of row_pipeline.cuh. Longer rows of whole packs that fit in registers (up to 512
// threads x 4 packs) are read once and written once: each thread holds its packs, the row's max and sum
// come from shuffles. Other rows (odd lengths, misaligned, very long) loop over the row with an online
// max/sum and read it a second time to write. exp is the hardware's exp2 for f32 (fast_exp.cuh), as in
// cross-entropy: fewer instructions per element than expf in these bandwidth-bound kernels.
#include "device_utils.cuh"
#include "fast_exp.cuh"
#include "row_launch.cuh"
#include "row_pipeline.cuh"
#include "softmax.h"

namespace mt::gpu {

namespace {

constexpr int kRegisterRowThreads = 512;

// One warp per staged row: the row is read from the stage for the max, again for exp(x - max) (held in
// registers with their sum), then written.
template <typename T, int P>
__global__ void __launch_bounds__(32 * kPipeWarps)
    softmax_forward_pipelined_kernel(const T* __restrict__ in, T* __restrict__ out, int64_t rows, int64_t cols,
                                     bool log_out) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x % 32;
  WarpRowPipeline<T, P, 1> pipe(smem_raw, {in}, rows, cols);
  pipe.run([&](int64_t row, const auto& stage) {
    A m = neg_inf<A>();
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> xp = stage.pack(0, i);
#pragma unroll
      for (int j = 0; j < V; ++j) m = MaxOp{}(m, to_acc(xp.v[j]));
    }
    A row_max = warp_allreduce(m, MaxOp{});
    // e: exp(x - max) for softmax, x - max for log_softmax. A row of -inf gives NaN, as on the CPU.
    A e[P][V];
    A s = 0;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> xp = stage.pack(0, i);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A d = to_acc(xp.v[j]) - row_max;
        A ex = exp_fast(d);
        s += ex;
        e[i][j] = log_out ? d : ex;
      }
    }
    A row_sum = warp_allreduce(s, SumOp{});
    A inv = A(1) / row_sum, log_sum = log_acc(row_sum);
    T* y = out + row * cols;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> r;
#pragma unroll
      for (int j = 0; j < V; ++j) r.v[j] = from_acc<T>(log_out ? e[i][j] - log_sum : e[i][j] * inv);
      store_pack<T, V>(y + (lane + 32 * i) * V, r);
    }
  });
}

// One warp per staged row of grad_out and y, read from the stage for the row's sum and again to write.
template <typename T, int P>
__global__ void __launch_bounds__(32 * kPipeWarps)
    softmax_backward_pipelined_kernel(const T* __restrict__ grad_out, const T* __restrict__ y_in,
                                      T* __restrict__ grad_in, int64_t rows, int64_t cols, bool log_out) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  extern __shared__ __align__(16) unsigned char smem_raw[];
  const int lane = threadIdx.x % 32;
  WarpRowPipeline<T, P, 2> pipe(smem_raw, {grad_out, y_in}, rows, cols);
  pipe.run([&](int64_t row, const auto& stage) {
    // softmax: sum(g * y); log_softmax: sum(g).
    A acc = 0;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> gp = stage.pack(0, i), yp = stage.pack(1, i);
#pragma unroll
      for (int j = 0; j < V; ++j) acc += log_out ? to_acc(gp.v[j]) : to_acc(gp.v[j]) * to_acc(yp.v[j]);
    }
    A total = warp_allreduce(acc, SumOp{});
    T* gi = grad_in + row * cols;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      if (!stage.has(i)) continue;
      Pack<T, V> gp = stage.pack(0, i), yp = stage.pack(1, i), r;
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A gj = to_acc(gp.v[j]), yj = to_acc(yp.v[j]);
        r.v[j] = from_acc<T>(log_out ? gj - exp_fast(yj) * total : yj * (gj - total));
      }
      store_pack<T, V>(gi + (lane + 32 * i) * V, r);
    }
  });
}

template <typename T, int P>
__global__ void __launch_bounds__(kRegisterRowThreads)
    softmax_forward_registers_kernel(const T* __restrict__ in, T* __restrict__ out, int64_t rows, int64_t cols,
                                     bool log_out) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  int64_t packs = cols / V;
  const T* x = in + (active ? row : 0) * cols;
  Pack<T, V> xp[P];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (active && row_pack(i) < packs) {
      xp[i] = load_pack<T, V>(x + row_pack(i) * V);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) xp[i].v[j] = from_acc<T>(neg_inf<A>());  // adds exp(-inf) = 0
    }
  }
  A m = neg_inf<A>();
#pragma unroll
  for (int i = 0; i < P; ++i)
#pragma unroll
    for (int j = 0; j < V; ++j) m = MaxOp{}(m, to_acc(xp[i].v[j]));
  A row_max = row_allreduce(m, MaxOp{}, scratch);
  // e: exp(x - max) for softmax, x - max for log_softmax. A row of -inf gives NaN, as on the CPU.
  A e[P][V];
  A s = 0;
#pragma unroll
  for (int i = 0; i < P; ++i)
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A d = to_acc(xp[i].v[j]) - row_max;
      A ex = exp_fast(d);
      s += ex;
      e[i][j] = log_out ? d : ex;
    }
  A row_sum = row_allreduce(s, SumOp{}, scratch);
  if (!active) return;
  T* y = out + row * cols;
  A inv = A(1) / row_sum, log_sum = log_acc(row_sum);
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (row_pack(i) >= packs) continue;
    Pack<T, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_acc<T>(log_out ? e[i][j] - log_sum : e[i][j] * inv);
    store_pack<T, V>(y + row_pack(i) * V, r);
  }
}

template <typename T, int P>
__global__ void __launch_bounds__(kRegisterRowThreads)
    softmax_backward_registers_kernel(const T* __restrict__ grad_out, const T* __restrict__ y_in,
                                      T* __restrict__ grad_in, int64_t rows, int64_t cols, bool log_out) {
  using A = acc_t<T>;
  constexpr int V = kPack<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  int64_t base = (active ? row : 0) * cols;
  int64_t packs = cols / V;
  Pack<T, V> gp[P], yp[P];
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (active && row_pack(i) < packs) {
      gp[i] = load_pack<T, V>(grad_out + base + row_pack(i) * V);
      yp[i] = load_pack<T, V>(y_in + base + row_pack(i) * V);
    } else {
#pragma unroll
      for (int j = 0; j < V; ++j) gp[i].v[j] = yp[i].v[j] = from_acc<T>(A(0));
    }
  }
  // softmax: sum(g * y); log_softmax: sum(g).
  A acc = 0;
#pragma unroll
  for (int i = 0; i < P; ++i)
#pragma unroll
    for (int j = 0; j < V; ++j) acc += log_out ? to_acc(gp[i].v[j]) : to_acc(gp[i].v[j]) * to_acc(yp[i].v[j]);
  A total = row_allreduce(acc, SumOp{}, scratch);
  if (!active) return;
#pragma unroll
  for (int i = 0; i < P; ++i) {
    if (row_pack(i) >= packs) continue;
    Pack<T, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A gj = to_acc(gp[i].v[j]), yj = to_acc(yp[i].v[j]);
      r.v[j] = from_acc<T>(log_out ? gj - exp_fast(yj) * total : yj * (gj - total));
    }
    store_pack<T, V>(grad_in + base + row_pack(i) * V, r);
  }
}

template <typename T, int V>
__global__ void softmax_forward_loop_kernel(const T* __restrict__ in, T* __restrict__ out, int64_t rows, int64_t cols,
                                            bool log_out) {
  using A = acc_t<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  const T* x = in + (active ? row : 0) * cols;
  int64_t packs = cols / V;
  // Online max and sum of exp(x - max) over this thread's elements.
  A m = neg_inf<A>(), s = 0;
  if (active) {
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> v = load_pack<T, V>(x + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) {
        A e = to_acc(v.v[j]);
        if (e > m) {
          s = (m == neg_inf<A>() ? A(0) : s * exp_fast(m - e)) + A(1);
          m = e;
        } else if (m != neg_inf<A>()) {  // with m = -inf, e is -inf too and adds nothing
          s += exp_fast(e - m);
        }
      }
    }
  }
  A row_max = row_allreduce(m, MaxOp{}, scratch);
  A mine = m == neg_inf<A>() ? A(0) : s * exp_fast(m - row_max);
  A row_sum = row_allreduce(mine, SumOp{}, scratch);
  if (!active) return;
  T* y = out + row * cols;
  A inv = A(1) / row_sum, log_sum = log_acc(row_sum);
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    Pack<T, V> v = load_pack<T, V>(x + p * V), r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A d = to_acc(v.v[j]) - row_max;
      r.v[j] = from_acc<T>(log_out ? d - log_sum : exp_fast(d) * inv);
    }
    store_pack<T, V>(y + p * V, r);
  }
}

template <typename T, int V>
__global__ void softmax_backward_loop_kernel(const T* __restrict__ grad_out, const T* __restrict__ y_in,
                                             T* __restrict__ grad_in, int64_t rows, int64_t cols, bool log_out) {
  using A = acc_t<T>;
  __shared__ A scratch[32 * 4];
  int64_t row = static_cast<int64_t>(blockIdx.x) * blockDim.y + threadIdx.y;
  bool active = row < rows;
  int64_t base = (active ? row : 0) * cols;
  const T* g = grad_out + base;
  const T* y = y_in + base;
  int64_t packs = cols / V;
  // softmax: sum(g * y); log_softmax: sum(g).
  A acc = 0;
  if (active) {
    for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
      Pack<T, V> gv = load_pack<T, V>(g + p * V), yv = load_pack<T, V>(y + p * V);
#pragma unroll
      for (int j = 0; j < V; ++j) acc += log_out ? to_acc(gv.v[j]) : to_acc(gv.v[j]) * to_acc(yv.v[j]);
    }
  }
  A total = row_allreduce(acc, SumOp{}, scratch);
  if (!active) return;
  T* gi = grad_in + base;
  for (int64_t p = threadIdx.x; p < packs; p += blockDim.x) {
    Pack<T, V> gv = load_pack<T, V>(g + p * V), yv = load_pack<T, V>(y + p * V), r;
#pragma unroll
    for (int j = 0; j < V; ++j) {
      A gj = to_acc(gv.v[j]), yj = to_acc(yv.v[j]);
      r.v[j] = from_acc<T>(log_out ? gj - exp_fast(yj) * total : yj * (gj - total));
    }
    store_pack<T, V>(gi + p * V, r);
  }
}

}  // namespace

template <typename T>
cudaError_t softmax_forward(const T* in, T* out, int64_t rows, int64_t cols, SoftmaxKind kind, cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = cols % V == 0 && is_aligned(in, 16) && is_aligned(out, 16);
  bool log_out = kind == SoftmaxKind::kLogSoftmax;
  cudaError_t status = cudaSuccess;
  bool done = false;
  if (vec)
    dispatch_row_packs<kPipeMaxPacks>(pipe_packs_per_lane(cols / V), [&](auto p) {
      unsigned blocks = 0;
      status = launch_pipelined(softmax_forward_pipelined_kernel<T, decltype(p)::value>,
                                PipeGrid{pipe_smem_bytes(cols / V, 1), (rows + kPipeWarps - 1) / kPipeWarps}, stream,
                                blocks, in, out, rows, cols, log_out);
      done = blocks > 0;
    });
  if (status != cudaSuccess) return status;
  RegisterRowLaunch r = vec && !done ? register_row_launch(rows, cols / V, kRegisterRowThreads) : RegisterRowLaunch{};
  if (!done) done = dispatch_row_packs(r.packs_per_thread, [&](auto p) {
    softmax_forward_registers_kernel<T, decltype(p)::value>
        <<<r.launch.grid, r.launch.block, 0, stream>>>(in, out, rows, cols, log_out);
  });
  if (!done) {
    RowLaunch l = row_launch(rows, vec ? cols / V : cols);
    if (vec)
      softmax_forward_loop_kernel<T, V><<<l.grid, l.block, 0, stream>>>(in, out, rows, cols, log_out);
    else
      softmax_forward_loop_kernel<T, 1><<<l.grid, l.block, 0, stream>>>(in, out, rows, cols, log_out);
  }
  return cudaGetLastError();
}

template <typename T>
cudaError_t softmax_backward(const T* grad_out, const T* y, T* grad_in, int64_t rows, int64_t cols, SoftmaxKind kind,
                             cudaStream_t stream) {
  if (rows == 0 || cols == 0) return cudaSuccess;
  constexpr int V = kPack<T>;
  bool vec = cols % V == 0 && is_aligned(grad_out, 16) && is_aligned(y, 16) && is_aligned(grad_in, 16);
  bool log_out = kind == SoftmaxKind::kLogSoftmax;
  cudaError_t status = cudaSuccess;
  bool done = false;
  if (vec)
    dispatch_row_packs<kPipeMaxPacks>(pipe_packs_per_lane(cols / V), [&](auto p) {
      unsigned blocks = 0;
      status = launch_pipelined(softmax_backward_pipelined_kernel<T, decltype(p)::value>,
                                PipeGrid{pipe_smem_bytes(cols / V, 2), (rows + kPipeWarps - 1) / kPipeWarps}, stream,
                                blocks, grad_out, y, grad_in, rows, cols, log_out);
      done = blocks > 0;
    });
  if (status != cudaSuccess) return status;
  RegisterRowLaunch r = vec && !done ? register_row_launch(rows, cols / V, kRegisterRowThreads) : RegisterRowLaunch{};
  if (!done) done = dispatch_row_packs(r.packs_per_thread, [&](auto p) {
    softmax_backward_registers_kernel<T, decltype(p)::value>
        <<<r.launch.grid, r.launch.block, 0, stream>>>(grad_out, y, grad_in, rows, cols, log_out);
  });
  if (!done) {
    RowLaunch l = row_launch(rows, vec ? cols / V : cols);
    if (vec)
      softmax_backward_loop_kernel<T, V><<<l.grid, l.block, 0, stream>>>(grad_out, y, grad_in, rows, cols, log_out);
    else
      softmax_backward_loop_kernel<T, 1><<<l.grid, l.block, 0, stream>>>(grad_out, y, grad_in, rows, cols, log_out);
  }
  return cudaGetLastError();
}

#define MT_SOFTMAX_INSTANTIATE(T)                                                                        \
  template cudaError_t softmax_forward<T>(const T*, T*, int64_t, int64_t, SoftmaxKind, cudaStream_t);    \
  template cudaError_t softmax_backward<T>(const T*, const T*, T*, int64_t, int64_t, SoftmaxKind, cudaStream_t);
MT_SOFTMAX_INSTANTIATE(float)
MT_SOFTMAX_INSTANTIATE(double)
MT_SOFTMAX_INSTANTIATE(__nv_bfloat16)
MT_SOFTMAX_INSTANTIATE(__half)
#undef MT_SOFTMAX_INSTANTIATE

}  // namespace mt::gpu
