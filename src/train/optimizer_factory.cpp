// make_optimizer: optim.* of a recipe -> AdamW or SGD.
#include "mt/train/optimizer_factory.h"

#include "mt/optim/adamw.h"
#include "mt/optim/sgd.h"

namespace mt {

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, const std::vector<NamedParameter>& params) {
  auto groups = weight_decay_groups(params, EmbeddingDecay::kYes);
  if (r.optim.name == OptimSection::Name::kSgd) {
    SgdConfig c;
    c.lr = r.optim.lr;
    c.momentum = r.optim.momentum;
    c.weight_decay = r.optim.weight_decay;
    return std::make_unique<Sgd>(std::move(groups), c);
  }
  AdamWConfig c;
  c.lr = r.optim.lr;
  c.beta1 = r.optim.beta1;
  c.beta2 = r.optim.beta2;
  c.eps = r.optim.eps;
  c.weight_decay = r.optim.weight_decay;
  return std::make_unique<AdamW>(std::move(groups), c);
}

}  // namespace mt
