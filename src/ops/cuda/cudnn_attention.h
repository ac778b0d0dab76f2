// Causal attention on cuDNN's fused SDPA: the forward and backward operation graphs built on the backend
// API (cudnn_graph.h), their execution plans cached per shape, run on the device's current stream.
// Contracts as AttentionForward / AttentionBackward in mt/ops/kernel_list.h, for bf16 / f16.
#pragma once
#include "mt/core/tensor.h"
#include "mt/ops/attention_backend.h"

namespace mt::cuda {

// Each returns whether cuDNN ran the op. A case cuDNN cannot take (dtype, head dim, alignment, or no plan
// for the shape: a refused shape is remembered, so it costs one lookup afterwards) returns false after a
// one-time message per shape when `mode` is kAuto, and throws saying why when it is kCudnn.
// q, k, v, dq, dk, dv: (B, H, T, D) views sharing one layout, out and dout another (unit last strides:
// contiguous, or the packed rows of Note [Packed QKV]); lse: contiguous f32 (B, H, T), natural-log
// logsumexp of the scaled, masked scores (cuDNN's softmax stats are the same quantity).
bool cudnn_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out,
                             const Tensor& lse, AttentionBackend mode);
bool cudnn_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out,
                              const Tensor& dout, const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk,
                              const Tensor& dv, AttentionBackend mode, Determinism determinism);

}  // namespace mt::cuda
