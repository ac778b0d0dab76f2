// Launchers for the fused multi-tensor optimizers: one launch updates many tensors, walking a chunk
// table in device memory (each block takes one chunk of one tensor). P: parameter type (float, double,
// __nv_bfloat16, __half); G: gradient type (P, or float for half parameters). Moments are float
// (double for double parameters); half parameters are updated through their f32 master copy.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "mt/math/host_device.h"

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

// The scalars as the host forms them (in double, then rounded to f32, as the CPU kernel and PyTorch);
// the kernels form them the same way on the device from Note [Step control]'s array.
MT_HOST_DEVICE AdamWArgs adamw_args(float lr, float beta1, float beta2, float eps, float weight_decay,
                                    float bias_correction1, float bias_correction2, float grad_scale) {
  return {static_cast<float>(1.0 - static_cast<double>(lr) * weight_decay),
          static_cast<float>(1.0 - static_cast<double>(beta1)),
          beta2,
          static_cast<float>(1.0 - static_cast<double>(beta2)),
          static_cast<float>(-static_cast<double>(lr) / bias_correction1),
          static_cast<float>(sqrt(static_cast<double>(bias_correction2))),
          eps,
          grad_scale};
}

// g = grad * grad_scale; p = p * decay; m = m + w1 (g - m); v = v beta2 + w2 g^2; p = p + neg_step * m / (sqrt(v) / bc2_sqrt + eps)
// (PyTorch's operation order). Tables in device memory. With `control` (Note [Step control], device memory),
// `args` is ignored: each block forms them with adamw_args from `constants` and the control's lr, bias
// corrections and grad_scale, and updates nothing when its apply flag is 0.
struct AdamWConstants {
  float beta1, beta2, eps, weight_decay;
};
template <typename P, typename G>
cudaError_t adamw_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                               const AdamWArgs& args, const AdamWConstants& constants, const double* control,
                               cudaStream_t stream);
// d = grad * grad_scale + wd * p; with a buffer: buf = buf * momentum + d, d = buf; p = p + (-lr) * d. With
// `control`, lr and grad_scale come from it and nothing is updated when its apply flag is 0.
template <typename P, typename G>
cudaError_t sgd_multi_tensor(const OptimTensorPtrs* tensors, const OptimChunk* chunks, int64_t num_chunks,
                             const SgdArgs& args, const double* control, cudaStream_t stream);
// control[kControlGradScale, kControlApply, kControlGradNorm] = set_step_control(sqrt(*sum_squares), *loss, max_norm).
cudaError_t step_control(const double* sum_squares, const double* loss, double max_norm, double* control,
                         cudaStream_t stream);

}  // namespace mt::gpu
