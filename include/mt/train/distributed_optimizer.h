// The post-backward half of a training step behind one object: gradients reduced over the data-
// and expert-parallel groups (ZeRO-2: reduce-scattered to their owners), the global norm clipped (in the
// update), the update on this rank's share of the parameters (ZeRO-1/2), the owners' broadcast, and every
// gradient dropped.
#pragma once
#include <memory>
#include <optional>

#include "mt/dist/gradient_reducer.h"
#include "mt/io/recipe.h"
#include "mt/optim/optimizer.h"
#include "mt/train/expert_sharding.h"
#include "mt/train/zero_partition.h"

namespace mt {

class DistributedOptimizer {
 public:
  // optim.* and dist.zero of `recipe`; `sharding` (of `model`) must outlive this object.
  DistributedOptimizer(const Recipe& recipe, Module& model, const ExpertSharding& sharding, const Communicator& world);

  // The step after the last backward, driven by Note [Step control]'s `control` (f64, on the parameters'
  // device; the caller writes lr and the bias corrections): the gradients averaged over the ranks
  // (dist.grad_reduce_dtype), their global norm, the clipping factor to optim.grad_clip (0: no clipping) and
  // the apply flag (norm and `loss`, the step's summed loss as f64 (1), finite) written into it, the update
  // read from it, then every gradient dropped. On one rank nothing is read back to the host (a CUDA graph
  // can capture it, Note [The captured step]); on several the norm and the loss are agreed on the host, so
  // every rank applies or skips together.
  void step(const Tensor& control, const Tensor& loss);
  // Before each micro-batch's backward, saying whether it is the step's last: the replicated gradients'
  // reduction starts bucket by bucket as the backward completes them (dist.overlap; Note [Overlapped
  // gradient reduction]), for the last backward only, or for every one under ZeRO-2.
  void start_reduction_during_backward(Backward backward);
  // After each micro-batch's backward: under ZeRO-2 one before the last has its gradients reduce-scattered
  // to their owners here (Note [Sharded gradients]); otherwise nothing (step does the rest).
  void reduce_after_backward(Backward backward);
  // Seconds the host waited in the last step for the replicated gradients' reduction.
  double exposed_communication_seconds() const { return exposed_seconds_; }
  // The state a checkpoint holds (under ZeRO assembled from the owners: a collective; a rank with
  // `keep` false only takes part).
  StateDict checkpoint_state(bool keep) const;
  Optimizer& local() { return *optimizer_; }

 private:
  Module& model_;
  const ExpertSharding& sharding_;
  Communicator world_;
  double grad_clip_;
  DistSection::GradReduceDType grad_reduce_dtype_;  // the wire dtype of half parameters' f32 gradients
  std::optional<ZeroPartition> zero_;
  std::unique_ptr<GradientReducer> reducer_;  // the replicated gradients' average (several ranks)
  bool sharded_grads_ = false;  // ZeRO-2 on several ranks
  double exposed_seconds_ = 0;
  double exposed_before_last_ = 0;  // ZeRO-2: the waits of the step's earlier backwards
  std::unique_ptr<Optimizer> optimizer_;
};

}  // namespace mt
