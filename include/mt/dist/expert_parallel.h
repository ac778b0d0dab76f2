// The exchange of expert parallelism: tokens travel to their expert's rank and back by a differentiable
// all-to-all over the layer's expert-parallel group (the groups: mt/dist/process_groups.h).
#pragma once
#include "mt/core/tensor.h"
#include "mt/dist/communicator.h"

namespace mt {

// Differentiable all-to-all over `group` (P ranks): x (P * n, ...) -> (P * n, ...), chunk j of the
// leading dim goes to rank j and chunk i of the result came from rank i. Its backward is the same
// exchange applied to the gradient. Every rank of the group must call it with the same shape.
Tensor all_to_all(const Tensor& x, const Communicator& group);

}  // namespace mt
