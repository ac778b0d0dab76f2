// DistributedOptimizer: reduce, clip, step, ZeRO broadcast, zero grads (distributed_optimizer.h).
#include "mt/train/distributed_optimizer.h"

#include "mt/optim/adamw.h"
#include "mt/optim/sgd.h"

namespace mt {

namespace {

std::unique_ptr<Optimizer> make_optimizer(const OptimSection& o, const std::vector<NamedParameter>& params) {
  auto groups = weight_decay_groups(params, EmbeddingDecay::kYes);
  if (o.name == OptimSection::Name::kSgd) {
    SgdConfig c;
    c.lr = o.lr;
    c.momentum = o.momentum;
    c.weight_decay = o.weight_decay;
    return std::make_unique<Sgd>(std::move(groups), c);
  }
  AdamWConfig c;
  c.lr = o.lr;
  c.beta1 = o.beta1;
  c.beta2 = o.beta2;
  c.eps = o.eps;
  c.weight_decay = o.weight_decay;
  return std::make_unique<AdamW>(std::move(groups), c);
}

}  // namespace

DistributedOptimizer::DistributedOptimizer(const Recipe& recipe, Module& model, const ExpertSharding& sharding,
                                           const Communicator& world)
    : model_(model), sharding_(sharding), world_(world), grad_clip_(recipe.optim.grad_clip),
      grad_reduce_dtype_(recipe.dist.grad_reduce_dtype) {
  // ZeRO-1 partitions the replicated parameters' optimizer state; split experts keep theirs (already
  // one copy per expert-data-parallel rank).
  std::vector<NamedParameter> optimized = model.named_parameters();
  if (recipe.dist.zero == 1 && world.size() > 1) {
    std::vector<NamedParameter> replicated, experts;
    for (const NamedParameter& p : optimized) (sharding.shards.count(p.name) ? experts : replicated).push_back(p);
    zero_.emplace(std::move(replicated), world);
    optimized = zero_->owned();
    optimized.insert(optimized.end(), experts.begin(), experts.end());
  }
  optimizer_ = make_optimizer(recipe.optim, optimized);
}

double DistributedOptimizer::reduce_and_clip() {
  reduce_gradients(sharding_, world_, grad_reduce_dtype_);
  return clip_gradients(sharding_, grad_clip_ > 0 ? grad_clip_ : 1e30);
}

void DistributedOptimizer::finish_step(double lr, bool apply) {
  if (apply) {
    optimizer_->set_lr(lr);
    optimizer_->step();
    if (zero_) zero_->broadcast_parameters();
  }
  model_.zero_grad();  // every gradient: under ZeRO the optimizer holds only its share of the parameters
}

StateDict DistributedOptimizer::checkpoint_state(bool keep) const {
  StateDict state = optimizer_->state_dict();
  if (zero_)
    for (auto& [key, t] : zero_->gather_optimizer_state(*optimizer_, keep)) state[key] = t;
  return state;
}

}  // namespace mt
