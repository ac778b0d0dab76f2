// A model's parameters under expert parallelism: the replicated ones (reduced over every rank) and the
// experts split over each MoE layer's expert-parallel group, with the data-parallel gradient reduction
// and the global gradient norm that follow from that split. Without expert parallelism every
// parameter is replicated and this is plain data parallelism.
#pragma once
#include <vector>

#include "mt/dist/process_groups.h"
#include "mt/io/recipe.h"
#include "mt/nn/module.h"
#include "mt/train/train_checkpoint.h"

namespace mt {

struct ExpertSharding {
  struct Layer {
    const ExpertGroups* groups;  // the layer's ep and expert_dp groups
    std::vector<Tensor> params;   // its experts' parameters (this rank's chunk)
  };
  std::vector<Tensor> replicated;
  std::vector<Layer> sharded;  // MoE layers whose experts are split (P > 1)
  ExpertShards shards;         // the same, by parameter name, for checkpoints
};

// Splits `model`'s parameters by the MoE layers' expert groups (groups may be null: all replicated).
ExpertSharding expert_sharding(Module& model, const ProcessGroups* groups);

// Averages the split experts' gradients for the whole job's loss (the mean over ranks): an expert's,
// which already sums the gradients of its ep group's tokens, is summed over its expert-data-parallel
// group and divided by the world size. (The replicated ones are averaged over the world by a
// GradientReducer.) The f32 gradients of bf16 parameters are summed in `dtype` (dist.grad_reduce_dtype).
void reduce_expert_gradients(const ExpertSharding& s, const Communicator& world,
                             DistSection::GradReduceDType dtype);

// The global gradient norm of the whole model, each expert counted once although its gradient lives on
// one rank of each ep group; the same on every rank (a collective). Nothing is scaled (Note [Clipping in
// the update] in mt/optim/optimizer.h). `replicated_sharded_over`: null when every rank holds the
// replicated gradients whole; under ZeRO-2 the group over which each rank holds its owned ones (their
// squares summed over it).
double global_grad_norm(const ExpertSharding& s, const Communicator* replicated_sharded_over = nullptr);

}  // namespace mt
