// The backward engine: counts dependencies over the graph reachable from the roots, then runs a
// ready queue (no recursion), accumulating each node's incoming gradients before it runs.
#pragma once
#include <vector>

#include "mt/core/tensor.h"

namespace mt {

enum class RetainGraph { kNo, kYes };

// grads[i] seeds roots[i]; an undefined grad means ones (roots must then be scalars).
void run_backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& grads, RetainGraph retain);

}  // namespace mt
