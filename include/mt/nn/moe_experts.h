// Experts: the FFNs of the experts of one MoE layer that this rank holds (all of them, or shard r of
// P under expert parallelism: global ids r * E/P .. (r + 1) * E/P - 1), stacked (w1 (E_local, d, h),
// b1 (E_local, 1, h), w2 (E_local, h, d), b2 (E_local, 1, d)) and run as one batched matmul per
// weight over the expert-major buffer, or over a packed dropless buffer one GEMM per expert sized to
// its rows (Note [Packed dropless buffer]).
#pragma once
#include <vector>

#include "mt/nn/module.h"

namespace mt {

class Experts : public Module {
 public:
  // `experts` in all, of which this rank holds shard `shard` of `shards`. Weights ~ N(0, std), biases
  // zero, drawn for all experts so that a shard holds the values the unsharded layer would.
  Experts(int64_t experts, int64_t d_model, int64_t hidden, Generator& gen, double std = 0.02, int shard = 0,
          int shards = 1);

  // buffer (E_local, C, d) -> (E_local, C, d): gelu(buffer @ w1 + b1) @ w2 + b2, expert by expert.
  // With expert_rows (a packed table's), buffer (N, d) -> (N, d), expert e's rows after e-1's.
  Tensor forward(const Tensor& buffer, const std::vector<int64_t>& expert_rows = {}) const;

  void reset_parameters(double std, Generator& gen) override;

  int64_t experts() const { return w1_.size(0); }  // held here
  int64_t global_experts() const { return w1_.size(0) * shards_; }
  const Tensor& w1() const { return w1_; }
  const Tensor& b1() const { return b1_; }
  const Tensor& w2() const { return w2_; }
  const Tensor& b2() const { return b2_; }

 private:
  Tensor w1_, b1_, w2_, b2_;
  int shard_ = 0, shards_ = 1;
};

}  // namespace mt
