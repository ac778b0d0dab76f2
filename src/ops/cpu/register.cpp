// The CPU backend's slots in the kernel table: every op has a CPU kernel (CI has no GPU).
#include "cpu_kernels.h"

namespace mt {

void register_cpu_kernels(KernelTable& t) {
  t.fill.cpu = cpu::fill;
  t.arange.cpu = cpu::arange;
  t.uniform.cpu = cpu::uniform;
  t.normal.cpu = cpu::normal;
  t.copy.cpu = cpu::copy;
  t.unary.cpu = cpu::unary;
  t.unary_backward.cpu = cpu::unary_backward;
  t.binary.cpu = cpu::binary;
  t.where.cpu = cpu::where;
  t.reduce_rows.cpu = cpu::reduce_rows;
  t.index_select.cpu = cpu::index_select;
  t.index_add.cpu = cpu::index_add;
  t.gather.cpu = cpu::gather;
  t.scatter_add.cpu = cpu::scatter_add;
  t.topk.cpu = cpu::topk;
  t.cumsum.cpu = cpu::cumsum;
  t.adamw.cpu = cpu::adamw;
  t.sgd.cpu = cpu::sgd;
  t.matmul.cpu = cpu::matmul;
  t.softmax.cpu = cpu::softmax;
  t.softmax_backward.cpu = cpu::softmax_backward;
  t.layer_norm_forward.cpu = cpu::layer_norm_forward;
  t.layer_norm_backward.cpu = cpu::layer_norm_backward;
  t.cross_entropy_forward.cpu = cpu::cross_entropy_forward;
  t.cross_entropy_backward.cpu = cpu::cross_entropy_backward;
  t.distillation_forward.cpu = cpu::distillation_forward;
  t.distillation_backward.cpu = cpu::distillation_backward;
  t.dropout.cpu = cpu::dropout;
  t.attention_forward.cpu = cpu::attention_forward;
  t.attention_backward.cpu = cpu::attention_backward;
  t.moe_route.cpu = cpu::moe_route;
  t.moe_buffer_map.cpu = cpu::moe_buffer_map;
  t.moe_permute.cpu = cpu::moe_permute;
  t.moe_unpermute.cpu = cpu::moe_unpermute;
  t.moe_unpermute_weight_grad.cpu = cpu::moe_unpermute_weight_grad;
}

}  // namespace mt
