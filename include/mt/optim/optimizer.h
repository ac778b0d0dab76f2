// Optimizer: the base of AdamW and SGD. It owns per-parameter state (f32 slots such as Adam's
// moments, and an f32 master copy of every bf16/f16 parameter, see Note [f32 masters] in
// src/ops/cpu/optim_cpu.cpp; such a parameter's gradient is f32 too, Note [f32 main gradients] in
// mt/graph/node.h), groups parameters by weight decay, and runs one fused kernel call
// per (group, device). Create it after the model has been moved with Module::to().
#pragma once
#include <string>
#include <vector>

#include "mt/core/state_dict.h"
#include "mt/nn/module.h"
#include "mt/ops/kernel_table.h"

namespace mt {

enum class WeightDecay : uint8_t { kSkip, kApply };
enum class EmbeddingDecay : uint8_t { kNo, kYes };

struct ParamGroup {
  std::vector<NamedParameter> params;
  WeightDecay weight_decay = WeightDecay::kApply;
};

// The usual split: weights decay; biases and norm parameters do not; embeddings decay only with
// EmbeddingDecay::kYes. Empty groups are left out.
std::vector<ParamGroup> weight_decay_groups(const std::vector<NamedParameter>& params, EmbeddingDecay embeddings);

// Note [Clipping in the update]: clipping by the global norm multiplies every gradient by
// max_norm / (norm + 1e-6) when that is < 1. A training step does not rewrite the gradients for it (a
// pass over all of them, 148 launches for GPT-2 124M); it hands the factor to step(), and the fused
// kernels multiply each gradient as they read it, in f32, as the separate pass did. The gradients
// themselves stay unclipped until the step drops them.
class Optimizer {
 public:
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // One update at lr() with every gradient taken times grad_scale (Note [Clipping in the update]);
  // parameters without a gradient are left as they are.
  void step(double grad_scale = 1.0);
  // Note [Step control] (mt/math/step_control.h): one update with lr, the bias corrections and grad_scale
  // read from `control` (f64, kStepControlSize, on the parameters' device), skipped there when its apply
  // flag is 0. The step count is not advanced: count_step() does, once the caller knows the step applied.
  void step(const Tensor& control);
  void count_step() { ++step_; }
  // (1 - beta1^t, 1 - beta2^t) of step t as the update uses them; (1, 1) for optimizers without them.
  virtual std::pair<double, double> bias_corrections(int64_t /*step*/) const { return {1.0, 1.0}; }
  void zero_grad();  // drops every parameter's gradient
  void set_lr(double lr);
  double lr() const { return lr_; }
  int64_t step_count() const { return step_; }
  const std::vector<ParamGroup>& param_groups() const { return groups_; }
  // The f32 master of a bf16/f16 parameter; undefined for f32 parameters. Errors on unknown names.
  Tensor master(const std::string& name) const;
  // The f32 state tensors each parameter gets (AdamW: exp_avg, exp_avg_sq), named as in state_dict().
  const std::vector<std::string>& slot_names() const { return slot_names_; }

  // "step" (i64 scalar) and "state.<param>.<slot>" for each slot and "state.<param>.master".
  // Tensors share storage with the live state: clone() to snapshot.
  StateDict state_dict() const;
  // Strict: every key must be present with its shape and dtype; unexpected keys are errors.
  void load_state_dict(const StateDict& state);

 protected:
  // slot_names: the f32 state tensors each parameter gets (AdamW: exp_avg, exp_avg_sq).
  Optimizer(std::vector<ParamGroup> groups, double lr, std::vector<std::string> slot_names);
  // One fused kernel call over tensors of one device and group; step_count() is already the new step, or
  // `control` is set (Note [Step control]) and overrides lr, the bias corrections and grad_scale.
  virtual void update(std::vector<OptimTensors>& tensors, WeightDecay decay, Device device, float grad_scale,
                      const double* control) = 0;

 private:
  struct ParamState {
    std::string name;
    Tensor param;
    WeightDecay decay;
    std::vector<Tensor> slots;
    Tensor master;
  };
  // The fused kernel calls of one step: grad_scale, or the control (Note [Step control]) when defined.
  void launch_updates(float grad_scale, const Tensor& control);

  std::vector<ParamGroup> groups_;
  std::vector<std::string> slot_names_;
  std::vector<ParamState> state_;
  double lr_;
  int64_t step_ = 0;
};

}  // namespace mt
