// make_optimizer: optim.* of a recipe -> AdamW or SGD.
#include "mt/train/optimizer_factory.h"

#include "mt/optim/adamw.h"
#include "mt/optim/sgd.h"

namespace mt {

std::unique_ptr<Optimizer> make_optimizer(const Recipe& recipe, const std::vector<NamedParameter>& params) {
  auto groups = weight_decay_groups(params, EmbeddingDecay::kYes);
  if (recipe.optim.name == OptimSection::Name::kSgd) {
    SgdConfig config;
    config.lr = recipe.optim.lr;
    config.momentum = recipe.optim.momentum;
    config.weight_decay = recipe.optim.weight_decay;
    return std::make_unique<Sgd>(std::move(groups), config);
  }
  AdamWConfig config;
  config.lr = recipe.optim.lr;
  config.beta1 = recipe.optim.beta1;
  config.beta2 = recipe.optim.beta2;
  config.eps = recipe.optim.eps;
  config.weight_decay = recipe.optim.weight_decay;
  return std::make_unique<AdamW>(std::move(groups), config);
}

}  // namespace mt
