// training_loss: CE + aux + KD of one micro-batch (training_loss.h).
#include "mt/train/training_loss.h"

#include "mt/graph/grad_mode.h"
#include "mt/ops/op_profiler.h"
#include "mt/ops/ops.h"

namespace mt {

TrainingLoss training_loss(GPT& model, GPT* teacher, const TokenBatch& batch, const DistillSection& distill) {
  Tensor logits = model.forward(batch.inputs);           // (B, T, V)
  Tensor logits2d = logits.view({-1, logits.size(-1)});  // (B*T, V)
  Tensor teacher_logits;                                 // (B*T, V) while distilling
  if (teacher) {
    NoGradGuard ng;
    Tensor t = teacher->forward(batch.inputs);
    teacher_logits = t.view({-1, t.size(-1)});
  }
  OpProfiler::Scope scope(OpCategory::kLoss);  // the loss kernels, for `bench step`
  TrainingLoss l;
  l.ce = cross_entropy(logits2d, batch.targets.view({-1}));
  l.total = l.ce.to(DType::F32);
  l.aux = model.moe_loss();
  if (l.aux.defined()) l.total = add(l.total, l.aux.to(DType::F32));
  if (teacher) {
    l.kd = distillation_loss(logits2d, teacher_logits, distill.temperature);
    l.total = add(l.total, mul(l.kd.to(DType::F32), distill.kd_coef));
  }
  return l;
}

}  // namespace mt
