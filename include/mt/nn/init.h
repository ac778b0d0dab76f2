// Parameter initialisation, with the generator always passed in (no hidden RNG state).
// init_gpt2 walks a module tree and calls each module's reset_parameters: GPT-2's scheme, Linear
// and Embedding weights N(0, std), biases 0, LayerNorm weight 1 and bias 0.
#pragma once
#include "mt/core/generator.h"
#include "mt/core/tensor.h"
#include "mt/nn/module.h"

namespace mt::init {

void normal_(const Tensor& t, double std, Generator& gen);  // N(0, std^2), in place
void zeros_(const Tensor& t);
void ones_(const Tensor& t);

}  // namespace mt::init

namespace mt {

// Re-initialises every module of the tree, pre-order in registration order.
void init_gpt2(Module& root, double std, Generator& gen);

}  // namespace mt
