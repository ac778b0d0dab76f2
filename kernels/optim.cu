// Fused multi-tensor AdamW and SGD: grid = chunks of the chunk table, one block per chunk, each thread
// striding over the chunk's elements (AdamW: 16-byte vectors of them where aligned); math in f32 (f64 for
// f64 parameters).
#include <type_traits>

#include "device_utils.cuh"
#include "mt/math/step_control.h"
#include "optim.h"

namespace mt::gpu {

namespace {

constexpr int kOptimThreads = 512;

// One element of AdamW in PyTorch's operation order: p is the master (or the parameter), m and v its moments.
template <typename A>
struct AdamWStep {
  A decay, w1, b2, w2, neg_step, bc2_sqrt, eps, scale;
  __device__ __forceinline__ void operator()(A g, A& p, A& m, A& v) const {
    g = g * scale;
    p = p * decay;
    m = m + w1 * (g - m);
    v = v * b2 + w2 * g * g;
    p = p + neg_step * m / (sqrt_acc(v) / bc2_sqrt + eps);
  }
};

__device__ __forceinline__ bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// f32 moments (and masters) are read and written as 16-byte vectors of kOptimVec elements where every
// pointer allows: the update moves ~30 bytes per bf16 parameter, and one-element accesses ran it at
// ~75% of the H200's copy bandwidth. The rest (misaligned tensors, a chunk's tail, f64) goes one by one.
constexpr int kOptimVec = 4;

template <typename P, typename G>
__global__ void __launch_bounds__(kOptimThreads) adamw_kernel(const OptimTensorPtrs* __restrict__ tensors,
                                                              const OptimChunk* __restrict__ chunks, AdamWArgs a,
                                                              AdamWConstants k, const double* __restrict__ control) {
  using A = acc_t<P>;
  if (control) {  // Note [Step control]
    if (control[kControlApply] == 0) return;
    a = adamw_args(static_cast<float>(control[kControlLr]), k.beta1, k.beta2, k.eps, k.weight_decay,
                   static_cast<float>(control[kControlBias1]), static_cast<float>(control[kControlBias2]),
                   static_cast<float>(control[kControlGradScale]));
  }
  OptimChunk ch = chunks[blockIdx.x];
  OptimTensorPtrs t = tensors[ch.tensor];
  int64_t end = ch.start + kOptimChunk < t.numel ? ch.start + kOptimChunk : t.numel;
  P* param = static_cast<P*>(t.param);
  const G* grad = static_cast<const G*>(t.grad);
  A* m = static_cast<A*>(t.momentum);
  A* v = static_cast<A*>(t.grad_sq_avg);
  float* master = t.master;
  const AdamWStep<A> step{a.decay, a.w1, a.beta2, a.w2, a.neg_step, a.bc2_sqrt, a.eps, a.grad_scale};
  int64_t tail = ch.start;  // where the one-by-one loop starts
  if constexpr (std::is_same_v<A, float>) {
    constexpr int V = kOptimVec;
    const bool vec = ch.start % V == 0 && reinterpret_cast<uintptr_t>(param) % (sizeof(P) * V) == 0 &&
                     reinterpret_cast<uintptr_t>(grad) % (sizeof(G) * V) == 0 && aligned16(m) && aligned16(v) &&
                     (master == nullptr || aligned16(master));
    if (vec) {
      tail = ch.start + (end - ch.start) / V * V;
      for (int64_t i = ch.start + static_cast<int64_t>(threadIdx.x) * V; i < tail; i += kOptimThreads * V) {
        const Pack<G, V> g = load_pack<G, V>(grad + i);
        Pack<A, V> p, mi = load_pack<A, V>(m + i), vi = load_pack<A, V>(v + i);
        if (master) {
          p = load_pack<A, V>(master + i);
        } else {
          const Pack<P, V> pp = load_pack<P, V>(param + i);
#pragma unroll
          for (int j = 0; j < V; ++j) p.v[j] = static_cast<A>(to_acc(pp.v[j]));
        }
        Pack<P, V> out;
#pragma unroll
        for (int j = 0; j < V; ++j) {
          step(static_cast<A>(to_acc(g.v[j])), p.v[j], mi.v[j], vi.v[j]);
          out.v[j] = from_acc<P>(p.v[j]);
        }
        store_pack<A, V>(m + i, mi);
        store_pack<A, V>(v + i, vi);
        if (master) store_pack<A, V>(master + i, p);
        store_pack<P, V>(param + i, out);
      }
    }
  }
  for (int64_t i = tail + threadIdx.x; i < end; i += kOptimThreads) {
    A p = master ? static_cast<A>(master[i]) : static_cast<A>(to_acc(param[i]));
    A mi = m[i], vi = v[i];
    step(static_cast<A>(to_acc(grad[i])), p, mi, vi);
    m[i] = mi;
    v[i] = vi;
    if (master) master[i] = static_cast<float>(p);
    param[i] = from_acc<P>(p);
  }
}

template <typename P, typename G>
__global__ void __launch_bounds__(kOptimThreads) sgd_kernel(const OptimTensorPtrs* __restrict__ tensors,
                                                            const OptimChunk* __restrict__ chunks, SgdArgs a,
                                                            const double* __restrict__ control) {
  using A = acc_t<P>;
  if (control) {  // Note [Step control]
    if (control[kControlApply] == 0) return;
    a.lr = static_cast<float>(control[kControlLr]);
    a.grad_scale = static_cast<float>(control[kControlGradScale]);
  }
  OptimChunk ch = chunks[blockIdx.x];
  OptimTensorPtrs t = tensors[ch.tensor];
  int64_t end = ch.start + kOptimChunk < t.numel ? ch.start + kOptimChunk : t.numel;
  P* param = static_cast<P*>(t.param);
  const G* grad = static_cast<const G*>(t.grad);
  A* buf = static_cast<A*>(t.momentum);
  float* master = t.master;
  A lr = a.lr, mom = a.momentum, wd = a.weight_decay, scale = a.grad_scale;
  for (int64_t i = ch.start + threadIdx.x; i < end; i += kOptimThreads) {
    A p = master ? static_cast<A>(master[i]) : static_cast<A>(to_acc(param[i]));
    A d = static_cast<A>(to_acc(grad[i])) * scale + wd * p;
    if (buf) {
      d = buf[i] * mom + d;
      buf[i] = d;
    }
    p = p + (-lr) * d;
    if (master) master[i] = static_cast<float>(p);
    param[i] = from_acc<P>(p);
  }
}

__global__ void step_control_kernel(const double* sum_squares, const double* loss, double max_norm, double* control) {
  set_step_control(sqrt(*sum_squares), *loss, max_norm, control);
}

}  // namespace

template <typename P, typename G>
cudaError_t adamw_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                               const AdamWArgs& args, const AdamWConstants& constants, const double* control,
                               cudaStream_t stream) {
  if (num_chunks == 0) return cudaSuccess;
  adamw_kernel<P, G><<<static_cast<unsigned>(num_chunks), kOptimThreads, 0, stream>>>(tensors, chunks, args,
                                                                                      constants, control);
  return cudaGetLastError();
}

template <typename P, typename G>
cudaError_t sgd_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                             const SgdArgs& args, const double* control, cudaStream_t stream) {
  if (num_chunks == 0) return cudaSuccess;
  sgd_kernel<P, G><<<static_cast<unsigned>(num_chunks), kOptimThreads, 0, stream>>>(tensors, chunks, args, control);
  return cudaGetLastError();
}

cudaError_t step_control(const double* sum_squares, const double* loss, double max_norm, double* control,
                         cudaStream_t stream) {
  step_control_kernel<<<1, 1, 0, stream>>>(sum_squares, loss, max_norm, control);
  return cudaGetLastError();
}

#define MT_OPTIM_INSTANTIATE(P, G)                                                                               \
  template cudaError_t adamw_multi_tensor<P, G>(const OptimTensorPtrs*, const OptimChunk*, int64_t,             \
                                                const AdamWArgs&, const AdamWConstants&, const double*, cudaStream_t); \
  template cudaError_t sgd_multi_tensor<P, G>(const OptimTensorPtrs*, const OptimChunk*, int64_t, const SgdArgs&, \
                                              const double*, cudaStream_t);
MT_OPTIM_INSTANTIATE(float, float)
MT_OPTIM_INSTANTIATE(double, double)
MT_OPTIM_INSTANTIATE(__nv_bfloat16, __nv_bfloat16)
MT_OPTIM_INSTANTIATE(__half, __half)
MT_OPTIM_INSTANTIATE(__nv_bfloat16, float)
MT_OPTIM_INSTANTIATE(__half, float)
#undef MT_OPTIM_INSTANTIATE

}  // namespace mt::gpu
