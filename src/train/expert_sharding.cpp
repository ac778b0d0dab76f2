// Parameter split, gradient reduction and global gradient norm under expert parallelism.
#include "mt/train/expert_sharding.h"

#include <cmath>
#include <map>
#include <set>

#include "mt/dist/gradient_buckets.h"
#include "mt/nn/moe_layer.h"
#include "mt/optim/clip_grad.h"

namespace mt {

ExpertSharding expert_sharding(Module& model, const ProcessGroups* groups) {
  ExpertSharding s;
  std::set<const TensorImpl*> sharded_params;
  for (auto& [name, m] : model.named_modules()) {
    auto* moe = dynamic_cast<MoELayer*>(m);
    if (!groups || !moe || !moe->expert_group()) continue;
    ExpertSharding::Layer layer{groups->groups_for(static_cast<int>(moe->config().experts)), {}};
    for (const NamedParameter& p : moe->experts().named_parameters()) {
      layer.params.push_back(p.tensor);
      sharded_params.insert(p.tensor.impl());
      s.shards.emplace((name.empty() ? "" : name + ".") + "experts." + p.name, layer.groups->ep);
    }
    s.sharded.push_back(std::move(layer));
  }
  for (const Tensor& p : model.parameters())
    if (!sharded_params.count(p.impl())) s.replicated.push_back(p);
  return s;
}

void reduce_expert_gradients(const ExpertSharding& s, const Communicator& world, DistSection::GradReduceDType dtype) {
  if (world.size() == 1) return;
  const DType main_grad = dtype == DistSection::GradReduceDType::kBf16 ? DType::kBF16 : DType::kF32;
  for (const ExpertSharding::Layer& layer : s.sharded)
    all_reduce_gradients(layer.params, layer.groups->expert_dp, kDefaultBucketBytes, world.size(), main_grad);
}

double global_grad_norm(const ExpertSharding& s, const Communicator* replicated_sharded_over) {
  double total = grad_sum_of_squares(s.replicated);  // sharded: the owned gradients only (the others are dropped)
  if (replicated_sharded_over) total = replicated_sharded_over->all_reduce(total, ReduceKind::kSum);
  // One all-reduce per distinct ep group (layers of the same size share it), in the order of the sizes:
  // every rank must issue them in the same order (an order by address would differ between ranks).
  std::map<int, std::pair<const Communicator*, double>> per_size;
  for (const ExpertSharding::Layer& layer : s.sharded) {
    auto& [group, sq] = per_size[layer.groups->ep.size()];
    group = &layer.groups->ep;
    sq += grad_sum_of_squares(layer.params);
  }
  for (const auto& [size, group_sq] : per_size) total += group_sq.first->all_reduce(group_sq.second, ReduceKind::kSum);
  return std::sqrt(total);
}

}  // namespace mt
