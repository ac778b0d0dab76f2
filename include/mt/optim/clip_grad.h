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

// The two halves of clip_grad_norm, for norms that span ranks (expert parallelism): the sum of squares
// of the gradients, and the scaling of every gradient by max_norm / (norm + 1e-6) when that is < 1 and
// the norm is finite.
double grad_sum_of_squares(const std::vector<Tensor>& params);
// The same sum as an f64 (1) tensor on `device`, where every gradient must be, read by nothing on the host
// (Note [Step control]); 0 when no parameter has a gradient.
Tensor grad_sum_of_squares_on(const std::vector<Tensor>& params, Device device);
void clip_grads_to_norm(const std::vector<Tensor>& params, double norm, double max_norm);
// The factor clipping multiplies every gradient by: max_norm / (norm + 1e-6) when that is < 1, else 1
// (and 1 for a non-finite norm). Optimizer::step takes it (Note [Clipping in the update]).
double clip_coefficient(double norm, double max_norm);

}  // namespace mt
