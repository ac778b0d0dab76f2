// The optimizer a recipe names (optim.name: AdamW or SGD with its settings), over the usual weight-decay
// groups (embeddings decay): what a training step updates the parameters with.
#pragma once
#include <memory>
#include <vector>

#include "mt/io/recipe.h"
#include "mt/nn/module.h"
#include "mt/optim/optimizer.h"

namespace mt {

std::unique_ptr<Optimizer> make_optimizer(const Recipe& recipe, const std::vector<NamedParameter>& params);

}  // namespace mt
