// dispatch_tokens / combine_tokens: one row-move op each way (moe_permute, moe_unpermute), driven by
// the routing table's expert/slot pairs and its buffer map; no zero-filled scratch, no atomics.
#include "mt/nn/moe_dispatch.h"

#include "mt/ops/ops.h"

namespace mt {

namespace {

void check_table(const RoutingTable& table, const char* op) {
  MT_CHECK(table.buffer_choice.defined() && table.buffer_choice.numel() == table.buffer_rows(), op,
           ": the routing table needs its buffer map (", table.buffer_rows(), " rows, from moe_buffer_map), got ",
           table.buffer_choice.describe());
}

}  // namespace

Tensor dispatch_tokens(const Tensor& x, const RoutingTable& table) {
  MT_CHECK(x.dim() == 2 && x.size(0) == table.tokens(), "dispatch_tokens: expected x (", table.tokens(),
           ", d), got ", x.describe());
  check_table(table, "dispatch_tokens");
  Tensor rows = moe_permute(x, table.row_map());  // (buffer rows, d)
  return table.packed() ? rows : rows.view({table.experts, table.capacity, x.size(1)});
}

Tensor combine_tokens(const Tensor& expert_out, const RoutingTable& table) {
  if (table.packed())
    MT_CHECK(expert_out.dim() == 2 && expert_out.size(0) == table.buffer_rows(),
             "combine_tokens: expected the packed expert outputs (", table.buffer_rows(), ", d), got ",
             expert_out.describe());
  else
    MT_CHECK(expert_out.dim() == 3 && expert_out.size(0) == table.experts && expert_out.size(1) == table.capacity,
             "combine_tokens: expected expert outputs (", table.experts, ", ", table.capacity, ", d), got ",
             expert_out.describe());
  check_table(table, "combine_tokens");
  // The row move weighs in f32 (f64 for f64 activations) and rounds once, at the output.
  DType weight_dtype = expert_out.dtype() == DType::kF64 ? DType::kF64 : DType::kF32;
  Tensor weight = table.weight.dtype() == weight_dtype ? table.weight : cast(table.weight, weight_dtype);
  Tensor rows = expert_out.reshape({table.buffer_rows(), expert_out.size(-1)});
  return moe_unpermute(rows, table.row_map(), weight);
}

}  // namespace mt
