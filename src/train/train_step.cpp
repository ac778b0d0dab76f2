// TrainStep (train_step.h): the step's device work queued from one function, run eagerly or captured
// once and replayed (Note [The captured step]), and the one read back per step that logging needs.
#include "mt/train/train_step.h"

#include "mt/core/host_sync_guard.h"
#include "mt/math/step_control.h"
#include "mt/ops/op_profiler.h"
#include "mt/ops/ops.h"
#include "mt/train/training_loss.h"

namespace mt {

namespace {

std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

}  // namespace

TrainStep::TrainStep(GPT& model, DistributedOptimizer& optimizer, const Recipe& recipe, int world_size,
                     Device device, Generator& dropout)
    : model_(model),
      optimizer_(optimizer),
      recipe_(recipe),
      dropout_(dropout),
      device_(device),
      control_(zeros({kStepControlSize}, {DType::kF64, device})),
      losses_(zeros({3}, {DType::kF64, device})),
      rng_base_(zeros({1}, {DType::kI64, device})) {
  if (!device.is_cuda())
    eager_reason_ = str_cat("the device is ", device);
  else if (!recipe.train.cuda_graph)
    eager_reason_ = "train.cuda_graph is false";
  else if (world_size > 1)
    eager_reason_ = str_cat(world_size, " ranks (graphs are captured on one GPU only)");
}

StepSums TrainStep::run(const std::vector<TokenBatch>& batches, GPT* teacher, double lr) {
  MT_CHECK(static_cast<int>(batches.size()) == recipe_.train.grad_accum, "a training step takes train.grad_accum = ",
           recipe_.train.grad_accum, " micro-batches, got ", batches.size());
  if (graph_ && teacher != graph_teacher_) {  // the teacher was freed (distill.stop_at): warm up again
    graph_.reset();
    inputs_.clear();
    eager_steps_ = 0;
  }
  Optimizer& local = optimizer_.local();
  const auto [bias1, bias2] = local.bias_corrections(local.step_count() + 1);
  control_.narrow(0, kControlLr, 3).copy_(Tensor::from_vector<double>({lr, bias1, bias2}, {3}));
  const bool profiled = OpProfiler::any_active();  // a profile times the eager kernels
  if (!graph_ && eager_reason_.empty() && eager_steps_ >= kWarmupSteps && !profiled) capture(batches, teacher);
  if (graph_ && !profiled) {
    for (size_t i = 0; i < batches.size(); ++i) {
      inputs_[i].inputs.copy_(batches[i].inputs);
      inputs_[i].targets.copy_(batches[i].targets);
    }
    GeneratorState rng = dropout_.state();
    rng_base_.copy_(Tensor::from_vector<int64_t>({static_cast<int64_t>(rng.offset)}, {1}));
    graph_->replay();
    rng.offset += draws_per_step_;
    dropout_.set_state(rng);
  } else {
    queue(batches, teacher);
    ++eager_steps_;
  }
  const std::vector<double> sums = losses_.to_vector<double>();  // the step's one wait for the device
  const std::vector<double> control = control_.to_vector<double>();
  const bool applied = control[kControlApply] != 0;
  if (applied) local.count_step();
  return {sums[0], sums[1], sums[2], control[kControlGradNorm], applied};
}

void TrainStep::queue(const std::vector<TokenBatch>& batches, GPT* teacher) {
  fill_(losses_, 0.0);
  const double scale = 1.0 / static_cast<double>(batches.size());
  for (size_t i = 0; i < batches.size(); ++i) {
    TrainingLoss loss = training_loss(model_, teacher, batches[i], recipe_.distill);
    const Backward backward = i + 1 == batches.size() ? Backward::kLast : Backward::kMore;
    optimizer_.start_reduction_during_backward(backward);
    mul(loss.total, scale).backward();
    const Tensor parts[3] = {loss.ce, loss.aux, loss.kd};
    for (int64_t part = 0; part < 3; ++part)
      if (parts[part].defined()) add_(losses_.narrow(0, part, 1), cast(parts[part], DType::kF64).reshape({1}));
    optimizer_.reduce_after_backward(backward);
  }
  optimizer_.step(control_, losses_.narrow(0, 0, 1));
}

void TrainStep::capture(const std::vector<TokenBatch>& batches, GPT* teacher) {
  for (const TokenBatch& b : batches) inputs_.push_back({b.inputs.clone(), b.targets.clone()});
  const GeneratorState before = dropout_.state();
  MT_ASSERT(before.offset % 4 == 0);  // the kernels add the base on whole Philox counters
  dropout_.set_device_base(static_cast<const uint64_t*>(rng_base_.data_ptr()));
  try {
    graph_ = std::make_unique<DeviceGraph>(device_, this, [&] {
      HostSyncForbidden no_sync("a captured training step");
      queue(inputs_, teacher);
    });
    graph_teacher_ = teacher;
    draws_per_step_ = dropout_.state().offset - before.offset;
  } catch (const Error& e) {
    model_.zero_grad();  // gradients the capture made hold nothing
    inputs_.clear();
    eager_reason_ = "the capture failed: " + first_line(e.what());
  }
  dropout_.set_device_base(nullptr);
  dropout_.set_state(before);  // nothing ran: the replay (or the eager step) draws from here
}

}  // namespace mt
