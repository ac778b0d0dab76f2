// DistributedOptimizer: reduce, clip, step, ZeRO broadcast, zero grads (distributed_optimizer.h).
#include "mt/train/distributed_optimizer.h"

#include "mt/math/step_control.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/op_profiler.h"
#include "mt/optim/clip_grad.h"
#include "mt/train/optimizer_factory.h"

namespace mt {

DistributedOptimizer::DistributedOptimizer(const Recipe& recipe, Module& model, const ExpertSharding& sharding,
                                           const Communicator& world)
    : model_(model), sharding_(sharding), world_(world), grad_clip_(recipe.optim.grad_clip),
      grad_reduce_dtype_(recipe.dist.grad_reduce_dtype) {
  // ZeRO-1 partitions the replicated parameters' optimizer state, ZeRO-2 their gradients too; split
  // experts keep theirs (already one copy per expert-data-parallel rank).
  std::vector<NamedParameter> optimized = model.named_parameters();
  if (recipe.dist.zero >= 1 && world.size() > 1) {
    std::vector<NamedParameter> replicated, experts;
    for (const NamedParameter& p : optimized) (sharding.shards.count(p.name) ? experts : replicated).push_back(p);
    zero_.emplace(std::move(replicated), world);
    optimized = zero_->owned();
    optimized.insert(optimized.end(), experts.begin(), experts.end());
  }
  optimizer_ = make_optimizer(recipe, optimized);
  if (world.size() > 1) {
    // ZeRO-2: each replicated gradient goes to its ZeRO owner (sharding.replicated and the partition list
    // the same parameters in the same order).
    std::vector<int> owners;
    sharded_grads_ = recipe.dist.zero == 2;
    if (sharded_grads_) {
      MT_ASSERT(zero_->params().size() == sharding.replicated.size());
      for (size_t i = 0; i < sharding.replicated.size(); ++i) {
        MT_ASSERT(zero_->params()[i].tensor.impl() == sharding.replicated[i].impl());
        owners.push_back(zero_->owner(i));
      }
    }
    reducer_ = std::make_unique<GradientReducer>(
        sharding.replicated, world,
        recipe.dist.grad_reduce_dtype == DistSection::GradReduceDType::kBf16 ? DType::kBF16 : DType::kF32,
        recipe.dist.overlap ? Overlap::kOn : Overlap::kOff, static_cast<size_t>(recipe.dist.bucket_mb * (1 << 20)),
        std::move(owners));
  }
}

void DistributedOptimizer::start_reduction_during_backward(Backward backward) {
  if (reducer_ && (sharded_grads_ || backward == Backward::kLast)) reducer_->arm();
}

void DistributedOptimizer::reduce_after_backward(Backward backward) {
  if (reducer_ && sharded_grads_ && backward == Backward::kMore) exposed_before_last_ += reducer_->finish(Backward::kMore);
}

void DistributedOptimizer::step(const Tensor& control, const Tensor& loss) {
  exposed_seconds_ = exposed_before_last_ + (reducer_ ? reducer_->finish(Backward::kLast) : 0);
  exposed_before_last_ = 0;
  reduce_expert_gradients(sharding_, world_, grad_reduce_dtype_);
  OpProfiler::Scope scope(OpCategory::kOptimizer);  // the norm's reductions and the update, for `bench step`
  bool apply = true;
  if (world_.size() == 1) {
    MT_ASSERT(sharding_.sharded.empty());
    const Tensor sum_squares = grad_sum_of_squares_on(sharding_.replicated, control.device());
    kernels().step_control.get(control.device(), "step_control")(sum_squares, loss, grad_clip_, control);
  } else {
    const double norm = global_grad_norm(sharding_, sharded_grads_ ? &world_ : nullptr);
    const double mean_loss = world_.all_reduce(loss.item(), ReduceKind::kAvg);
    std::vector<double> values(kStepControlSize, 0.0);
    set_step_control(norm, mean_loss, grad_clip_, values.data());
    apply = values[kControlApply] != 0;
    const int64_t written = kStepControlSize - kControlGradScale;  // the entries set_step_control writes
    control.narrow(0, kControlGradScale, written)
        .copy_(Tensor::from_vector<double>({values.begin() + kControlGradScale, values.end()}, {written}));
  }
  optimizer_->step(control);
  if (zero_ && apply) zero_->broadcast_parameters();
  model_.zero_grad();  // every gradient: under ZeRO the optimizer holds only its share of the parameters
}

StateDict DistributedOptimizer::checkpoint_state(bool keep) const {
  StateDict state = optimizer_->state_dict();
  if (zero_)
    for (auto& [key, t] : zero_->gather_optimizer_state(*optimizer_, keep)) state[key] = t;
  return state;
}

}  // namespace mt
