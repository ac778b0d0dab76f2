// Declarations of the CUDA kernels (contracts in mt/ops/kernel_table.h), one line each,
// grouped by the file that implements them.
#pragma once
#include "mt/ops/kernel_table.h"

namespace mt::cuda {

// elementwise_cuda.cpp
Kernels::Fill fill;
Kernels::Arange arange;
Kernels::Uniform uniform;
Kernels::Normal normal;
Kernels::Copy copy;
Kernels::Unary unary;
Kernels::UnaryBackward unary_backward;
Kernels::Binary binary;
Kernels::Where where;
// reduction_cuda.cpp
Kernels::ReduceRows reduce_rows;
// indexing_cuda.cpp
Kernels::IndexSelect index_select;
Kernels::IndexAdd index_add;
Kernels::Gather gather;
Kernels::ScatterAdd scatter_add;
Kernels::TopK topk;
Kernels::Cumsum cumsum;
// matmul_cuda.cpp
Kernels::Matmul matmul;
// nn_cuda.cpp
Kernels::Softmax softmax;
Kernels::SoftmaxBackward softmax_backward;
Kernels::LayerNormForward layer_norm_forward;
Kernels::LayerNormBackward layer_norm_backward;
Kernels::CrossEntropyForward cross_entropy_forward;
Kernels::CrossEntropyBackward cross_entropy_backward;
Kernels::DistillationForward distillation_forward;
Kernels::DistillationBackward distillation_backward;
Kernels::AttentionForward attention_forward;
Kernels::AttentionBackward attention_backward;
Kernels::Dropout dropout;
// moe_cuda.cpp
Kernels::MoeRoute moe_route;
Kernels::MoeBufferMap moe_buffer_map;
Kernels::MoePermute moe_permute;
Kernels::MoeUnpermute moe_unpermute;
Kernels::MoeUnpermuteWeightGrad moe_unpermute_weight_grad;
// optim_cuda.cpp
Kernels::AdamW adamw;
Kernels::Sgd sgd;

}  // namespace mt::cuda
