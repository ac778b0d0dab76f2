// run_contiguous: contiguous copies of the inputs, contiguous scratch for the outputs, copied back.
#include "mt/ops/contiguous_run.h"

namespace mt {

bool all_contiguous(std::initializer_list<const Tensor*> tensors) {
  for (const Tensor* t : tensors)
    if (!t->is_contiguous()) return false;
  return true;
}

void run_contiguous(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const ContiguousKernel& kernel) {
  std::vector<Tensor> in, out;
  for (const Tensor& t : inputs) in.push_back(t.contiguous());
  for (const Tensor& t : outputs)
    out.push_back(t.is_contiguous() ? t : Tensor::empty(t.shape(), t.dtype(), t.device()));
  kernel(in, out);
  for (size_t i = 0; i < outputs.size(); ++i)
    if (!out[i].is_same(outputs[i])) outputs[i].copy_(out[i]);
}

}  // namespace mt
