// dispatch_tokens / combine_tokens: one index_add into a buffer with a scratch row for dropped
// choices, and one index_select out of the expert outputs padded with a zero row.
#include "mt/nn/moe_dispatch.h"

#include "mt/ops/ops.h"

namespace mt {

namespace {

// Token of each (token, choice) row of buffer_rows(): (S * k) i64, token-major.
Tensor choice_tokens(const RoutingTable& table) {
  int64_t tokens = table.tokens(), k = table.top_k();
  Tensor ids = arange(0, static_cast<double>(tokens), 1, {DType::I64, table.expert.device()});
  return ids.unsqueeze(1).expand({tokens, k}).reshape({tokens * k});
}

}  // namespace

Tensor dispatch_tokens(const Tensor& x, const RoutingTable& table) {
  MT_CHECK(x.dim() == 2 && x.size(0) == table.tokens(), "dispatch_tokens: expected x (", table.tokens(),
           ", d), got ", x.describe());
  const int64_t rows = table.experts * table.capacity, d = x.size(1);
  Tensor per_choice = table.top_k() == 1 ? x : index_select(x, 0, choice_tokens(table));  // (S * k, d)
  Tensor buffer = zeros({rows + 1, d}, {x.dtype(), x.device()});  // last row: scratch for dropped choices
  buffer = index_add(buffer, 0, table.buffer_rows(), per_choice);
  return buffer.narrow(0, 0, rows).view({table.experts, table.capacity, d});
}

Tensor combine_tokens(const Tensor& expert_out, const RoutingTable& table) {
  MT_CHECK(expert_out.dim() == 3 && expert_out.size(0) == table.experts && expert_out.size(1) == table.capacity,
           "combine_tokens: expected expert outputs (", table.experts, ", ", table.capacity, ", d), got ",
           expert_out.describe());
  const int64_t rows = table.experts * table.capacity, d = expert_out.size(2);
  const int64_t tokens = table.tokens(), k = table.top_k();
  Tensor padded = cat({expert_out.reshape({rows, d}), zeros({1, d}, {expert_out.dtype(), expert_out.device()})}, 0);
  Tensor picked = index_select(padded, 0, table.buffer_rows());  // (S * k, d); dropped: the zero row
  Tensor weight = table.weight.dtype() == expert_out.dtype() ? table.weight : cast(table.weight, expert_out.dtype());
  weight = weight.reshape({tokens * k, 1});
  Tensor weighted = mul(picked, weight);
  return k == 1 ? weighted : sum(weighted.view({tokens, k, d}), {1});
}

}  // namespace mt
