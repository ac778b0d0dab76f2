// The loss a training micro-batch minimises: cross-entropy + the MoE layers' aux (and z) losses +,
// while a teacher is present, distill.kd_coef x the distillation loss (staged KD).
#pragma once
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/validation.h"

namespace mt {

struct TrainingLoss {
  Tensor total;  // f32 scalar, what the backward starts from
  Tensor ce;     // cross-entropy (the reported loss)
  Tensor aux;    // sum of the MoE losses; undefined for a dense model
  Tensor kd;     // distillation loss; undefined without a teacher
};

// teacher: null when not distilling (it runs without gradients).
TrainingLoss training_loss(GPT& model, GPT* teacher, const TokenBatch& batch, const DistillSection& distill);

}  // namespace mt
