// Note [Step control]: the scalars of one optimizer step as one f64 array on the parameters' device,
// so that a training step (forward, backward, norm, clip, update) queues no read back to the host and
// can be captured once and replayed as a CUDA graph (Note [The captured step], mt/train/train_step.h).
#pragma once
#include <cmath>

#include "mt/math/host_device.h"

namespace mt {

// The host writes lr and the bias corrections (1 - beta^t; 1 for SGD) before the step is queued; the
// device writes the rest from the gradients' sum of squares and the step's summed loss.
enum StepControlIndex : int {
  kControlLr,
  kControlBias1,
  kControlBias2,
  kControlGradScale,  // the clipping coefficient (Note [Clipping in the update])
  kControlApply,      // 1: update; 0: the loss or the norm is not finite, the step is skipped
  kControlGradNorm,   // before clipping
  kStepControlSize
};

// control[kControlGradScale, kControlApply, kControlGradNorm] from the gradients' global sum of squares
// and the loss: the arithmetic of clip_coefficient (mt/optim/clip_grad.h), in double; max_norm 0: no clip.
MT_HOST_DEVICE bool is_finite_value(double x) { return x - x == 0.0; }  // false for NaN and +-inf

MT_HOST_DEVICE void set_step_control(double sum_squares, double loss, double max_norm, double* control) {
  const double norm = sqrt(sum_squares);
  const bool finite = is_finite_value(norm) && is_finite_value(loss);
  double scale = 1.0;
  if (max_norm > 0 && is_finite_value(norm)) {
    scale = max_norm / (norm + 1e-6);
    scale = scale < 1.0 ? scale : 1.0;
  }
  control[kControlGradScale] = scale;
  control[kControlApply] = finite ? 1.0 : 0.0;
  control[kControlGradNorm] = norm;
}

}  // namespace mt
