// ZeRO-1: parameter ownership, the owners' broadcast, and the optimizer state assembled for checkpoints.
#include "mt/train/zero_partition.h"

#include "mt/dist/gradient_buckets.h"
#include "mt/graph/grad_mode.h"

namespace mt {

ZeroPartition::ZeroPartition(std::vector<NamedParameter> params, const Communicator& group)
    : params_(std::move(params)), group_(group) {
  int64_t total = 0;
  for (const NamedParameter& p : params_) total += p.tensor.numel();
  // Parameter i goes to the rank whose equal share of the elements holds its first element.
  int64_t before = 0;
  const int ranks = group_.size();
  for (const NamedParameter& p : params_) {
    owner_.push_back(total == 0 ? 0 : static_cast<int>(before * ranks / total));
    before += p.tensor.numel();
  }
}

std::vector<NamedParameter> ZeroPartition::owned() const {
  std::vector<NamedParameter> out;
  for (size_t i = 0; i < params_.size(); ++i)
    if (owner_[i] == group_.rank()) out.push_back(params_[i]);
  return out;
}

void ZeroPartition::broadcast_parameters() const {
  NoGradGuard ng;
  for (int k = 0; k < group_.size(); ++k) {
    std::vector<Tensor> from_k;
    for (size_t i = 0; i < params_.size(); ++i)
      if (owner_[i] == k) from_k.push_back(params_[i].tensor.detach());
    bucketed_collective(from_k, [&](const Tensor& flat) { group_.broadcast(flat, k); });
  }
}

StateDict ZeroPartition::gather_optimizer_state(const Optimizer& local, bool keep) const {
  StateDict mine = local.state_dict();
  StateDict out;
  if (keep) out["step"] = mine.at("step").to(Device::cpu());
  for (size_t i = 0; i < params_.size(); ++i) {
    const NamedParameter& p = params_[i];
    std::vector<std::string> keys;
    for (const std::string& slot : local.slot_names()) keys.push_back("state." + p.name + "." + slot);
    if (is_half(p.tensor.dtype())) keys.push_back("state." + p.name + ".master");
    for (const std::string& key : keys) {
      Tensor t = owner_[i] == group_.rank() ? mine.at(key).clone()
                                            : Tensor::empty(p.tensor.shape(), DType::kF32, p.tensor.device());
      group_.broadcast(t, owner_[i]);
      if (keep) out[key] = t.to(Device::cpu());
    }
  }
  return out;
}

}  // namespace mt
