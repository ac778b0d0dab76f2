// Launchers for the fused multi-tensor optimizers: one launch updates many tensors, walking a chunk
// table in device memory (each block takes one chunk of one tensor). P: parameter type (float, double,
// __nv_bfloat16, __half); G: gradient type (P, or float for half parameters). Moments are float
// (double for double parameters); half parameters are updated through their f32 master copy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpukernels {

// Elements per chunk of the chunk table.
constexpr int64_t kOptimChunk = 65536;

// One tensor's pointers; exp_avg_sq is null for SGD, exp_avg null for SGD without momentum, master
// null unless P is a half type.
struct OptimTensorPtrs {
  void* param;
  const void* grad;
  void* exp_avg;
  void* exp_avg_sq;
  float* master;
  int64_t numel;
};

// Elements [start, min(start + kOptimChunk, numel)) of tensors[tensor].
struct OptimChunk {
  int64_t tensor;
  int64_t start;
};

struct AdamWArgs {
  float lr, beta1, beta2, eps, weight_decay;
  float bias_correction1, bias_correction2;  // 1 - beta^t
};

struct SgdArgs {
  float lr, momentum, weight_decay;
};

// p -= lr * wd * p; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
// p -= (lr / bc1) * m / (sqrt(v) / sqrt(bc2) + eps). Tables in device memory.
template <typename P, typename G>
cudaError_t adamw_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                               const AdamWArgs& args, cudaStream_t stream);
// g += wd * p; with momentum: buf = momentum * buf + g, g = buf; p -= lr * g.
template <typename P, typename G>
cudaError_t sgd_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                             const SgdArgs& args, cudaStream_t stream);

}  // namespace mt::gpukernels
