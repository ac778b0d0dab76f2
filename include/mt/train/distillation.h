// Staged knowledge distillation (DeepSpeed-MoE, section 4.2): a student (a PR-MoS, say) learns from
// a frozen teacher loaded from a checkpoint, with loss CE + aux + distill.kd_coef * KD, until
// distill.stop_at, after which KD stops (late in training it starts to hurt) and the teacher is freed.
#pragma once
#include <cstdint>

#include "mt/io/recipe.h"
#include "mt/train/checkpoint_model.h"

namespace mt {

// The first optimizer step (0-based count of steps done) at which KD is off: distill.stop_at as a
// fraction of train.steps when <= 1 (rounded to the nearest step), a step number when > 1; 0 or 1
// mean the whole run. train.steps when no teacher is named.
int64_t distillation_stop_step(const Recipe& recipe);

// Loads distill.teacher (a run folder, checkpoints folder or .h5 file) on `device` in eval mode and
// checks it can teach this student: the same vocabulary, a context at least as long. Its experts are
// split over the student's dist.ep ranks of `world` as the student's are (a 13B teacher fits no single
// GPU): each rank holds its share, and the teacher's forward runs the all-to-alls on every rank together.
LoadedModel load_teacher(const Recipe& student, Device device, const Communicator& world);

}  // namespace mt
