// Note [Step control]: the scalars of one optimizer step as one f64 array on the parameters' device,
// so that a training step (forward, backward, norm, clip, update) queues no read back to the host and
// can be captured once and replayed as a CUDA graph (Note [The captured step], mt/train/train_step.h).
#pragma once
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

MT_HOST_DEVICE bool is_finite_value(double x) { return x - x == 0.0; }  // false for NaN and +-inf

// The factor clipping to max_norm multiplies every gradient by: max_norm / (norm + 1e-6) when that is < 1,
// else 1, and 1 for a non-finite norm (clip_coefficient in mt/optim/clip_grad.h is this).
MT_HOST_DEVICE double clip_scale(double norm, double max_norm) {
  if (!is_finite_value(norm)) return 1.0;
  const double scale = max_norm / (norm + 1e-6);
  return scale < 1.0 ? scale : 1.0;
}

// control[kControlGradScale, kControlApply, kControlGradNorm] from the gradients' global norm and the loss;
// max_norm 0: no clipping.
MT_HOST_DEVICE void set_step_control(double norm, double loss, double max_norm, double* control) {
  control[kControlGradScale] = max_norm > 0 ? clip_scale(norm, max_norm) : 1.0;
  control[kControlApply] = is_finite_value(norm) && is_finite_value(loss) ? 1.0 : 0.0;
  control[kControlGradNorm] = norm;
}

}  // namespace mt
