// Declarations of the CUDA kernels (contracts in mt/ops/kernel_table.h), one line each,
// grouped by the file that implements them.
#pragma once
#include "mt/ops/kernel_table.h"

namespace mt::cuda {

// matmul_cuda.cpp
Kernels::Matmul matmul;
// nn_cuda.cpp
Kernels::Softmax softmax;
Kernels::SoftmaxBackward softmax_backward;
Kernels::LayerNormForward layer_norm_forward;
Kernels::LayerNormBackward layer_norm_backward;
Kernels::CrossEntropyForward cross_entropy_forward;
Kernels::CrossEntropyBackward cross_entropy_backward;
Kernels::AttentionForward attention_forward;
Kernels::AttentionBackward attention_backward;
Kernels::Dropout dropout;
// optim_cuda.cpp
Kernels::AdamW adamw;
Kernels::Sgd sgd;

}  // namespace mt::cuda
