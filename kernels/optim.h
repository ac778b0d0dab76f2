// Launchers for the fused multi-tensor optimizers: one launch updates many tensors, walking a chunk
// table in device memory (each block takes one chunk of one tensor). P: parameter type (float, double,
// __nv_bfloat16, __half); G: gradient type (P, or float for half parameters). Moments are float
// (double for double parameters); half parameters are updated through their f32 master copy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// Elements per chunk of the chunk table.
constexpr int64_t kOptimChunk = 65536;

// One tensor's pointers, as mt::OptimTensors: grad_sq_avg is null for SGD, momentum null for SGD without
// momentum, master null unless P is a half type.
struct OptimTensorPtrs {
  void* param;
  const void* grad;
  void* momentum;     // AdamW's first moment (exp_avg) or SGD's momentum buffer
  void* grad_sq_avg;  // AdamW's second moment (exp_avg_sq)
  float* master;
  int64_t numel;
};

// Elements [start, min(start + kOptimChunk, numel)) of tensors[tensor].
struct OptimChunk {
  int64_t tensor;
  int64_t start;
};

// AdamW's scalars, precomputed on the host as PyTorch does: decay = 1 - lr * wd, w1 = 1 - beta1,
// w2 = 1 - beta2, neg_step = -lr / (1 - beta1^t), bc2_sqrt = sqrt(1 - beta2^t).
// grad_scale multiplies each gradient as it is read (the clipping coefficient).
struct AdamWArgs {
  float decay, w1, beta2, w2, neg_step, bc2_sqrt, eps, grad_scale;
};

struct SgdArgs {
  float lr, momentum, weight_decay, grad_scale;
};

// g = grad * grad_scale; p = p * decay; m = m + w1 (g - m); v = v beta2 + w2 g^2; p = p + neg_step * m / (sqrt(v) / bc2_sqrt + eps)
// (PyTorch's operation order). Tables in device memory.
template <typename P, typename G>
cudaError_t adamw_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                               const AdamWArgs& args, cudaStream_t stream);
// d = grad * grad_scale + wd * p; with a buffer: buf = buf * momentum + d, d = buf; p = p + (-lr) * d.
template <typename P, typename G>
cudaError_t sgd_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                             const SgdArgs& args, cudaStream_t stream);

}  // namespace mt::gpu
