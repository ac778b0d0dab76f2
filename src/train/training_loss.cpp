// training_loss: CE + aux + KD of one micro-batch (training_loss.h).
#include "mt/train/training_loss.h"

#include "mt/graph/grad_mode.h"
#include "mt/ops/op_profiler.h"
#include "mt/ops/ops.h"

namespace mt {

TrainingLoss training_loss(GPT& model, GPT* teacher, const TokenBatch& batch, const DistillSection& distill) {
  TrainingLoss loss;
  if (teacher) {
    Tensor logits = model.forward(batch.inputs);           // (B, T, V)
    Tensor logits2d = logits.view({-1, logits.size(-1)});  // (B*T, V)
    Tensor teacher_logits;                                 // (B*T, V)
    {
      NoGradGuard no_grad;
      Tensor teacher_out = teacher->forward(batch.inputs);
      teacher_logits = teacher_out.view({-1, teacher_out.size(-1)});
    }
    OpProfiler::Scope scope(OpCategory::kLoss);  // the loss kernels, for `bench step`
    loss.ce = cross_entropy(logits2d, batch.targets.view({-1}));
    loss.kd = distillation_loss(logits2d, teacher_logits, distill.temperature);
  } else {
    // The loss is the logits' only use: their gradient comes with the loss (Note [Fused LM head loss]).
    loss.ce = model.lm_loss(batch.inputs, batch.targets);
  }
  loss.total = loss.ce.to(DType::kF32);
  loss.aux = model.moe_loss();
  if (loss.aux.defined()) loss.total = add(loss.total, loss.aux.to(DType::kF32));
  if (loss.kd.defined()) loss.total = add(loss.total, mul(loss.kd.to(DType::kF32), distill.kd_coef));
  return loss;
}

}  // namespace mt
