// run_contiguous: runs a kernel that reads and writes contiguous buffers on tensors that may be strided
// views (the attention kernels' contract takes the packed-QKV views of Note [Packed QKV]). Views among the
// inputs are copied to contiguous buffers; views among the outputs get contiguous scratch, copied back
// into them after the kernel. With no views at all the kernel runs on the tensors themselves.
#pragma once
#include <functional>
#include <initializer_list>
#include <vector>

#include "mt/core/tensor.h"

namespace mt {

using ContiguousKernel = std::function<void(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs)>;
bool all_contiguous(std::initializer_list<const Tensor*> tensors);
void run_contiguous(const std::vector<Tensor>& inputs, const std::vector<Tensor>& outputs, const ContiguousKernel& kernel);

}  // namespace mt
