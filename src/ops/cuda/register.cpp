// The CUDA backend's slots in the kernel table; an op without a CUDA kernel fails naming the device.
// The CUDA backend's slots in the kernel table.
#include "cuda_kernels.h"

namespace mt {

void register_cuda_kernels(KernelTable& t) {
  t.fill.cuda = cuda::fill;
  t.arange.cuda = cuda::arange;
  t.uniform.cuda = cuda::uniform;
  t.normal.cuda = cuda::normal;
  t.copy.cuda = cuda::copy;
  t.unary.cuda = cuda::unary;
  t.unary_backward.cuda = cuda::unary_backward;
  t.binary.cuda = cuda::binary;
  t.where.cuda = cuda::where;
  t.reduce_rows.cuda = cuda::reduce_rows;
  t.index_select.cuda = cuda::index_select;
  t.index_add.cuda = cuda::index_add;
  t.gather.cuda = cuda::gather;
  t.scatter_add.cuda = cuda::scatter_add;
  t.topk.cuda = cuda::topk;
  t.cumsum.cuda = cuda::cumsum;
  t.matmul.cuda = cuda::matmul;
  t.softmax.cuda = cuda::softmax;
  t.softmax_backward.cuda = cuda::softmax_backward;
  t.layer_norm_forward.cuda = cuda::layer_norm_forward;
  t.layer_norm_backward.cuda = cuda::layer_norm_backward;
  t.cross_entropy_forward.cuda = cuda::cross_entropy_forward;
  t.cross_entropy_backward.cuda = cuda::cross_entropy_backward;
  t.distillation_forward.cuda = cuda::distillation_forward;
  t.distillation_backward.cuda = cuda::distillation_backward;
  t.attention_forward.cuda = cuda::attention_forward;
  t.attention_backward.cuda = cuda::attention_backward;
  t.dropout.cuda = cuda::dropout;
  t.adamw.cuda = cuda::adamw;
  t.sgd.cuda = cuda::sgd;
  t.moe_route.cuda = cuda::moe_route;
  t.moe_buffer_map.cuda = cuda::moe_buffer_map;
  t.moe_permute.cuda = cuda::moe_permute;
  t.moe_unpermute.cuda = cuda::moe_unpermute;
  t.moe_unpermute_weight_grad.cuda = cuda::moe_unpermute_weight_grad;
}

}  // namespace mt
