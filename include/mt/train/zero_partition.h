// ZeRO stage 1 (Rajbhandari et al., 2020): the optimizer state (Adam moments, f32 masters) of the
// replicated parameters is partitioned over the data-parallel ranks. Gradients are still averaged
// everywhere; each rank's optimizer updates only the parameters it owns, and the owners then broadcast
// the new values. Checkpoints hold the state whole, as one optimizer over all parameters would. ZeRO-2
// uses the same owners for the gradients (Note [Sharded gradients] in src/dist/gradient_reducer.cpp).
#pragma once
#include <vector>

#include "mt/dist/communicator.h"
#include "mt/nn/module.h"
#include "mt/optim/optimizer.h"

namespace mt {

class ZeroPartition {
 public:
  // `params` (in model order) split into contiguous runs, one per rank of `group`, of about equal
  // element counts (a rank may own none when there are fewer parameters than ranks).
  ZeroPartition(std::vector<NamedParameter> params, const Communicator& group);

  // The parameters this rank owns: the ones its optimizer holds state for and updates.
  std::vector<NamedParameter> owned() const;
  int owner(size_t i) const { return owner_[i]; }
  const std::vector<NamedParameter>& params() const { return params_; }

  // After the owners' optimizer step: every parameter sent from its owner to the other ranks, in
  // buckets (a collective).
  void broadcast_parameters() const;

  // The optimizer state of every partitioned parameter ("state.<param>.<slot>", "state.<param>.master"
  // for bf16/f16 ones) and "step", each sent by its owner from `local`, this rank's optimizer. A
  // collective: a rank with `keep` gets host copies, the others only take part (one tensor at a time
  // on the device, so the whole state is never resident on one GPU).
  StateDict gather_optimizer_state(const Optimizer& local, bool keep) const;

 private:
  std::vector<NamedParameter> params_;
  std::vector<int> owner_;  // per parameter
  Communicator group_;
};

}  // namespace mt
