// The CUDA backend's slots in the kernel table.
#include "cuda_kernels.h"

namespace mt {

void register_cuda_kernels(KernelTable& t) {
  t.matmul.cuda = cuda::matmul;
  t.softmax.cuda = cuda::softmax;
  t.softmax_backward.cuda = cuda::softmax_backward;
  t.layer_norm_forward.cuda = cuda::layer_norm_forward;
  t.layer_norm_backward.cuda = cuda::layer_norm_backward;
  t.cross_entropy_forward.cuda = cuda::cross_entropy_forward;
  t.cross_entropy_backward.cuda = cuda::cross_entropy_backward;
  t.attention_forward.cuda = cuda::attention_forward;
  t.attention_backward.cuda = cuda::attention_backward;
  t.dropout.cuda = cuda::dropout;
  t.adamw.cuda = cuda::adamw;
  t.sgd.cuda = cuda::sgd;
}

}  // namespace mt
