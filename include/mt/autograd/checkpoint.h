// checkpoint: activation recomputation for a function of tensors. The forward runs `fn` without
// recording its graph and keeps only the inputs; the backward rewinds `gen` to where the forward found
// it, runs `fn` again with recording on, and backpropagates the outputs' gradients through that run
// (parameters used inside get their gradients there). The re-run draws the same random numbers, so
// it computes the same values: gradients equal those without recomputation.
#pragma once
#include <functional>
#include <vector>

#include "mt/core/generator.h"
#include "mt/core/tensor.h"

namespace mt {

using CheckpointFn = std::function<std::vector<Tensor>(const std::vector<Tensor>& inputs)>;

// `fn` must depend only on its inputs, the parameters it uses and `gen` (the only stream it draws
// from), and return defined tensors. With grad mode off (evaluation) it just calls fn.
std::vector<Tensor> checkpoint(const CheckpointFn& fn, const std::vector<Tensor>& inputs, Generator& gen);

}  // namespace mt
