// MoELayer: the MoE feed-forward of a transformer block. Router ("gate") -> dispatcher -> Experts
// ("experts") -> combine; for mlp_type residual also a dense MLP ("mlp") mixed per token by a
// learned 2-way softmax ("coefficient"), as DeepSpeed's MoE layer does. Keeps the last forward's
// aux / z losses (tensors, to add to the loss) and routing counters (host values, for the log).
// Under expert parallelism each rank holds E/P experts and the dispatcher moves tokens by all-to-all.
#pragma once
#include <memory>
#include <optional>

#include "mt/nn/linear.h"
#include "mt/nn/mlp.h"
#include "mt/nn/moe_config.h"
#include "mt/nn/moe_dispatcher.h"
#include "mt/nn/moe_experts.h"
#include "mt/nn/moe_router.h"
#include "mt/nn/module.h"

namespace mt {

class MoELayer : public Module {
 public:
  // Parameters: gate.weight, experts.{w1,b1,w2,b2} (stacked by global expert id), and for
  // residual also mlp.{fc,proj}.{weight,bias} and coefficient.{weight,bias}. Weights are drawn
  // from N(0, 0.02) with `gen`, biases are zero. With `groups` (an ep group of P ranks) this rank holds
  // experts rank * E/P .. (rank + 1) * E/P - 1, and every rank of the group must run each forward and
  // backward together, with the same number of tokens (dropless: the group agrees on the largest capacity).
  MoELayer(const MoEConfig& config, Generator& gen, const ExpertGroups* groups = nullptr);

  // x (..., d) -> (..., d); tokens are all leading positions. `gen` feeds the noisy gate (training)
  // and random token selection. Dropped tokens get 0 from the experts (the block's residual carries them).
  Tensor forward(const Tensor& x, Generator& gen);

  // Of the last forward (0-d, the gate's dtype). Undefined before the first forward.
  const Tensor& aux_loss() const { return aux_loss_; }
  const Tensor& z_loss() const { return z_loss_; }
  // aux_loss_coef * aux_loss + z_loss_coef * z_loss: this layer's term of the training loss.
  Tensor weighted_loss() const;
  // Replaces the last forward's losses (a recomputed block hands out the differentiable ones, Note
  // [Recomputation] in transformer_block.cpp).
  void set_losses(const Tensor& aux_loss, const Tensor& z_loss) {
    aux_loss_ = aux_loss;
    z_loss_ = z_loss;
  }
  const RoutingStats& stats() const { return stats_; }

  const MoEConfig& config() const { return config_; }
  Router& gate() { return *gate_; }
  Experts& experts() { return *experts_; }
  // Residual-MoE only (null otherwise).
  MLP* mlp() { return mlp_.get(); }
  Linear* coefficient() { return coefficient_.get(); }
  // The expert-parallel group the experts are split over; null when they are all here.
  const Communicator* expert_group() const { return groups_ ? &groups_->ep : nullptr; }

 private:
  MoEConfig config_;
  std::shared_ptr<Router> gate_;
  std::shared_ptr<Experts> experts_;
  std::unique_ptr<TokenDispatcher> dispatcher_;
  std::shared_ptr<MLP> mlp_;
  std::shared_ptr<Linear> coefficient_;
  std::optional<ExpertGroups> groups_;
  Tensor aux_loss_, z_loss_;
  RoutingStats stats_;
};

}  // namespace mt
