// Gradient clipping by global L2 norm, as torch.nn.utils.clip_grad_norm_.
#pragma once
#include <vector>

#include "mt/core/tensor.h"

namespace mt {

// The L2 norm over all parameters' gradients (per-tensor sums of squares in f32, or f64 for f64
// grads, totalled in f64); when max_norm / (norm + 1e-6) < 1 every gradient is scaled by that
// factor in place. Parameters without a gradient are skipped. Returns the norm before clipping; a
// non-finite norm is returned without scaling anything (the caller decides to skip the step).
double clip_grad_norm(const std::vector<Tensor>& params, double max_norm);

}  // namespace mt
