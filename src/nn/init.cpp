// Initialisation helpers: in-place fills under no-grad, and the GPT-2 tree walk.
#include "mt/nn/init.h"

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt::init {

void normal_(const Tensor& t, double std, Generator& gen) {
  NoGradGuard no_grad;
  ::mt::normal_(t.detach(), 0.0, std, gen);
}

void zeros_(const Tensor& t) {
  NoGradGuard no_grad;
  fill_(t.detach(), 0.0);
}

void ones_(const Tensor& t) {
  NoGradGuard no_grad;
  fill_(t.detach(), 1.0);
}

}  // namespace mt::init

namespace mt {

void init_gpt2(Module& root, double std, Generator& gen) {
  MT_CHECK(std > 0, "init_gpt2: std must be > 0, got ", std);
  for (auto& [name, m] : root.named_modules()) m->reset_parameters(std, gen);
}

}  // namespace mt
