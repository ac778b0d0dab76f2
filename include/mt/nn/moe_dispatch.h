// The dispatcher: moves tokens into an expert-major buffer (E, C, d) by the routing table, and
// back again (weighted by the gate) once the experts ran. Both directions are differentiable row
// moves (mt/ops/moe_ops.h); an empty slot is a zero row, a dropped choice adds nothing.
#pragma once
#include "mt/core/tensor.h"
#include "mt/nn/moe_routing.h"

namespace mt {

// x (S, d) -> (E, C, d): buffer[expert, slot] = x[token] for every kept (token, choice); empty
// slots are zero. A packed table's buffer is (N, d), expert after expert (RoutingTable::expert_rows).
Tensor dispatch_tokens(const Tensor& x, const RoutingTable& table);

// expert_out (E, C, d), or (N, d) packed -> (S, d): out[token] = sum_j weight[token, j] * expert_out[expert, slot]
// over the kept choices (dropped ones add 0). Differentiable w.r.t. expert_out and the weights;
// the sum is taken in f32 (f64 for f64 outputs) and rounded to expert_out's dtype.
Tensor combine_tokens(const Tensor& expert_out, const RoutingTable& table);

}  // namespace mt
