// Experts: parameter setup and the batched two-layer FFN.
#include "mt/nn/moe_experts.h"

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

Experts::Experts(int64_t experts, int64_t d_model, int64_t hidden, Generator& gen, double std, int shard, int shards)
    : shard_(shard), shards_(shards) {
  MT_CHECK(experts >= 1 && d_model >= 1 && hidden >= 1, "Experts: expected experts, d_model, hidden >= 1, got ",
           experts, ", ", d_model, ", ", hidden);
  MT_CHECK(shards >= 1 && shard >= 0 && shard < shards && experts % shards == 0, "Experts: shard ", shard, " of ",
           shards, " cannot hold an even share of ", experts, " experts");
  int64_t local = experts / shards;
  w1_ = register_parameter("w1", zeros({local, d_model, hidden}), ParamKind::kWeight);
  b1_ = register_parameter("b1", zeros({local, 1, hidden}), ParamKind::kBias);
  w2_ = register_parameter("w2", zeros({local, hidden, d_model}), ParamKind::kWeight);
  b2_ = register_parameter("b2", zeros({local, 1, d_model}), ParamKind::kBias);
  reset_parameters(std, gen);
}

void Experts::reset_parameters(double std, Generator& gen) {
  NoGradGuard no_grad;
  // Drawn for every expert (the same generator draws whatever the sharding), then this shard's kept.
  auto draw = [&](const Tensor& w) {
    Tensor all = Tensor::empty({w.size(0) * shards_, w.size(1), w.size(2)}, w.dtype(), w.device());
    normal_(all, 0.0, std, gen);
    w.copy_(all.narrow(0, w.size(0) * shard_, w.size(0)));
  };
  draw(w1_);
  draw(w2_);
  fill_(b1_, 0.0);
  fill_(b2_, 0.0);
}

Tensor Experts::forward(const Tensor& buffer, const std::vector<int64_t>& expert_rows) const {
  if (!expert_rows.empty()) return experts_mlp_gelu_packed(buffer, expert_rows, w1_, b1_, w2_, b2_);  // (N, d)
  MT_CHECK(buffer.dim() == 3 && buffer.size(0) == w1_.size(0) && buffer.size(2) == w1_.size(1),
           "Experts: expected a buffer (", w1_.size(0), ", C, ", w1_.size(1), "), got ", buffer.describe());
  return experts_mlp_gelu(buffer, w1_, b1_, w2_, b2_);  // (E, C, d), GELU in the GEMM epilogues
}

}  // namespace mt
