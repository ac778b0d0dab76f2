// Optimizer base: parameter state, decay groups, per-device batching of the fused kernels, and
// the state dict that lets training resume bit-exactly.
#include "mt/optim/optimizer.h"

#include <algorithm>
#include <set>

#include "mt/graph/grad_mode.h"
#include "mt/math/step_control.h"
#include "mt/ops/ops.h"

namespace mt {

std::vector<ParamGroup> weight_decay_groups(const std::vector<NamedParameter>& params, EmbeddingDecay embeddings) {
  ParamGroup decay{{}, WeightDecay::kApply}, no_decay{{}, WeightDecay::kSkip};
  for (const NamedParameter& p : params) {
    bool decays = p.kind == ParamKind::kWeight ||
                  (p.kind == ParamKind::kEmbedding && embeddings == EmbeddingDecay::kYes);
    (decays ? decay : no_decay).params.push_back(p);
  }
  std::vector<ParamGroup> out;
  if (!decay.params.empty()) out.push_back(std::move(decay));
  if (!no_decay.params.empty()) out.push_back(std::move(no_decay));
  return out;
}

Optimizer::Optimizer(std::vector<ParamGroup> groups, double lr, std::vector<std::string> slot_names)
    : groups_(std::move(groups)), slot_names_(std::move(slot_names)), lr_(lr) {
  std::set<std::string> names;
  NoGradGuard no_grad;
  for (const ParamGroup& g : groups_) {
    for (const NamedParameter& p : g.params) {
      MT_CHECK(names.insert(p.name).second, "optimizer: parameter '", p.name, "' is listed twice");
      MT_CHECK(p.tensor.defined() && p.tensor.is_leaf() && p.tensor.is_contiguous(), "optimizer: parameter '",
               p.name, "' must be a contiguous leaf tensor, got ", p.tensor.describe());
      DType dt = p.tensor.dtype();
      MT_CHECK(dt == DType::kF32 || is_half(dt), "optimizer: parameter '", p.name,
               "' must be f32, bf16 or f16, got ", p.tensor.describe());
      ParamState s{p.name, p.tensor, g.weight_decay, {}, Tensor()};
      for (size_t i = 0; i < slot_names_.size(); ++i)
        s.slots.push_back(zeros(p.tensor.shape(), {DType::kF32, p.tensor.device()}));
      if (is_half(dt)) s.master = cast(p.tensor.detach(), DType::kF32);
      state_.push_back(std::move(s));
    }
  }
}

void Optimizer::set_lr(double lr) {
  MT_CHECK(lr >= 0, "optimizer: learning rate must be >= 0, got ", lr);
  lr_ = lr;
}

void Optimizer::step(double grad_scale) {
  ++step_;
  launch_updates(static_cast<float>(grad_scale), Tensor());
}

void Optimizer::step(const Tensor& control) {
  MT_CHECK(control.defined() && control.dtype() == DType::kF64 && control.numel() == kStepControlSize &&
               control.is_contiguous(),
           "optimizer: the step control must be ", static_cast<int>(kStepControlSize), " contiguous f64 values, got ",
           control.describe());
  launch_updates(1.0f, control);
}

void Optimizer::launch_updates(float grad_scale, const Tensor& control) {
  NoGradGuard no_grad;
  for (WeightDecay decay : {WeightDecay::kApply, WeightDecay::kSkip}) {
    // Batch the tensors of one decay flag by device, in parameter order.
    std::vector<std::pair<Device, std::vector<OptimTensors>>> batches;
    for (ParamState& s : state_) {
      if (s.decay != decay) continue;
      Tensor grad = s.param.grad();
      if (!grad.defined()) continue;
      MT_CHECK(grad.shape() == s.param.shape() && grad.device() == s.param.device(), "optimizer: gradient of '",
               s.name, "' is ", grad.describe(), " but the parameter is ", s.param.describe());
      OptimTensors t{s.param.detach(), grad.detach().contiguous(), s.slots.size() > 0 ? s.slots[0] : Tensor(),
                     s.slots.size() > 1 ? s.slots[1] : Tensor(), s.master};
      Device d = s.param.device();
      auto it = std::find_if(batches.begin(), batches.end(), [&](const auto& b) { return b.first == d; });
      if (it == batches.end()) it = batches.insert(batches.end(), {d, {}});
      it->second.push_back(std::move(t));
      s.param.bump_version();
    }
    for (auto& [device, tensors] : batches) {
      MT_CHECK(!control.defined() || control.device() == device, "optimizer: the step control is on ",
               control.device(), " but parameters are on ", device);
      update(tensors, decay, device, grad_scale, control.defined() ? control.data<double>() : nullptr);
    }
  }
}

void Optimizer::zero_grad() {
  for (const ParamState& s : state_) s.param.zero_grad();
}

Tensor Optimizer::master(const std::string& name) const {
  for (const ParamState& s : state_)
    if (s.name == name) return s.master;
  MT_FAIL("optimizer: no parameter named '", name, "'");
}

StateDict Optimizer::state_dict() const {
  StateDict out;
  out["step"] = scalar_tensor(static_cast<double>(step_), {DType::kI64});
  for (const ParamState& s : state_) {
    for (size_t i = 0; i < slot_names_.size(); ++i) out["state." + s.name + "." + slot_names_[i]] = s.slots[i];
    if (s.master.defined()) out["state." + s.name + ".master"] = s.master;
  }
  return out;
}

void Optimizer::load_state_dict(const StateDict& state) {
  StateDict own = state_dict();
  for (const auto& [key, dst] : own) {
    auto it = state.find(key);
    MT_CHECK(it != state.end(), "optimizer load_state_dict: missing key '", key, "'");
    const Tensor& src = it->second;
    MT_CHECK(src.shape() == dst.shape() && src.dtype() == dst.dtype(), "optimizer load_state_dict: '", key,
             "' is ", src.dtype(), src.shape(), " in the state dict but ", dst.dtype(), dst.shape(),
             " in the optimizer");
  }
  for (const auto& kv : state)
    MT_CHECK(own.count(kv.first), "optimizer load_state_dict: unexpected key '", kv.first, "'");
  NoGradGuard no_grad;
  int64_t step = static_cast<int64_t>(state.at("step").item());
  MT_CHECK(step >= 0, "optimizer load_state_dict: 'step' must be >= 0, got ", step);
  for (const auto& [key, dst] : own)
    if (key != "step") dst.copy_(state.at(key));
  step_ = step;
}

}  // namespace mt
