// One optimizer step of training, for the trainer and `bench step` alike: the micro-batches' forward and
// backward, the gradient reduction, the clipped update and the dropped gradients, driven by Note [Step
// control]'s array, with the losses summed on the device; on one GPU, replayed as a CUDA graph.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "mt/core/device_graph.h"
#include "mt/core/generator.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/distributed_optimizer.h"
#include "mt/train/validation.h"

namespace mt {

// Note [The captured step]: a GPT-2 step is ~1,500 kernels; launched one by one, the GPU waits between
// them for the host (~1 ms a step at 124M). So on a CUDA device of a one-rank run (train.cuda_graph), after
// kWarmupSteps eager steps, the next step's device work is captured once and every later step replays it
// with one launch. What makes that correct:
// - No host read inside: the losses are summed on the device, the norm, clip factor and skip decision are
//   computed there (Note [Step control]); a HostSyncForbidden scope turns any read into a clear error.
// - Fixed addresses: the micro-batches are copied into buffers the graph reads; parameters, optimizer
//   state and the control array live across steps; everything the step allocates comes from its own pool
//   in the caching allocator (set_graph_pool), never handed to eager work between replays, and each
//   replay reuses it in the order of the capture. The optimizer's tables are written once, at the capture.
// - Fresh random numbers each step: the dropout generator hands the capture offsets relative to a device
//   base (Generator::set_device_base), which each replay sets to the generator's offset, then advances the
//   generator by the captured step's draws: dropout, random token selection and sampled second experts draw
//   what the eager step would.
// - Same work each step: dropless MoE reads its capacity on the host (the capture fails and says so; the
//   steps stay eager), as do profiled steps and several ranks. A changed teacher (freed at distill.stop_at)
//   drops the graph and warms up again.
// Replays give the eager step's results bit for bit (tests/train/train_step_test.cpp, TrainStep.Cuda*).
struct StepSums {
  double loss = 0, aux = 0, kd = 0;  // summed over the step's micro-batches (this rank)
  double grad_norm = 0;              // before clipping, all ranks
  bool applied = true;               // false: a non-finite loss or norm, the update skipped
};

class TrainStep {
 public:
  static constexpr int kWarmupSteps = 2;

  // `model`, `optimizer` and `dropout` (the generator the model's forward draws from) outlive this object.
  TrainStep(GPT& model, DistributedOptimizer& optimizer, const Recipe& recipe, int world_size, Device device,
            Generator& dropout);

  // One step at `lr` over train.grad_accum micro-batches on the device; `teacher` null without distillation.
  StepSums run(const std::vector<TokenBatch>& batches, GPT* teacher, double lr);

  // Queues one step's device work, what run() runs or captures: the losses summed into the device, the
  // optimizer driven by the control run() wrote last. It reads nothing back on the host.
  void queue(const std::vector<TokenBatch>& batches, GPT* teacher);

  // Why the steps run eagerly ("" while warming up or captured), and whether they are replayed now.
  const std::string& eager_reason() const { return eager_reason_; }
  bool replaying() const { return graph_ != nullptr; }

 private:
  void capture(const std::vector<TokenBatch>& batches, GPT* teacher);

  GPT& model_;
  DistributedOptimizer& optimizer_;
  const Recipe& recipe_;
  Generator& dropout_;
  Device device_;
  Tensor control_;  // f64 (kStepControlSize), Note [Step control]
  Tensor losses_;   // f64 (3): summed cross-entropy, aux and KD losses
  Tensor rng_base_;  // i64 (1): the dropout generator's offset at the step a replay runs
  uint64_t draws_per_step_ = 0;  // the captured step's draws from the dropout generator
  std::string eager_reason_;
  int eager_steps_ = 0;               // since the last (re)start of the warm-up
  GPT* graph_teacher_ = nullptr;      // the teacher the graph was captured with
  std::vector<TokenBatch> inputs_;    // the graph's micro-batches
  std::unique_ptr<DeviceGraph> graph_;
};

}  // namespace mt
