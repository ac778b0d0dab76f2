// Declarations of the CPU kernels (contracts in mt/ops/kernel_table.h), one line each,
// grouped by the file that implements them.
#pragma once
#include "mt/ops/kernel_table.h"

namespace mt::cpu {

// elementwise_cpu.cpp
Kernels::Fill fill;
Kernels::Arange arange;
Kernels::Uniform uniform;
Kernels::Normal normal;
Kernels::Copy copy;
Kernels::Unary unary;
Kernels::UnaryBackward unary_backward;
Kernels::Binary binary;
Kernels::Where where;
// reduction_cpu.cpp
Kernels::ReduceRows reduce_rows;
// indexing_cpu.cpp
Kernels::IndexSelect index_select;
Kernels::IndexAdd index_add;
Kernels::Gather gather;
Kernels::ScatterAdd scatter_add;
Kernels::TopK topk;
Kernels::Cumsum cumsum;
// optim_cpu.cpp
Kernels::AdamW adamw;
Kernels::Sgd sgd;
// linalg_cpu.cpp
Kernels::Matmul matmul;
// nn_cpu.cpp
Kernels::Softmax softmax;
Kernels::SoftmaxBackward softmax_backward;
Kernels::LayerNormForward layer_norm_forward;
Kernels::LayerNormBackward layer_norm_backward;
Kernels::CrossEntropyForward cross_entropy_forward;
Kernels::CrossEntropyBackward cross_entropy_backward;
Kernels::DistillationForward distillation_forward;
Kernels::DistillationBackward distillation_backward;
Kernels::Dropout dropout;
// moe_cpu.cpp
Kernels::MoeRoute moe_route;
Kernels::MoeBufferMap moe_buffer_map;
Kernels::MoePermute moe_permute;
Kernels::MoeUnpermute moe_unpermute;
Kernels::MoeUnpermuteWeightGrad moe_unpermute_weight_grad;
// attention_cpu.cpp
Kernels::AttentionForward attention_forward;
Kernels::AttentionBackward attention_backward;

}  // namespace mt::cpu
