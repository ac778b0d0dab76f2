// Activation recomputation (Note [Recomputation]): train.recompute attention and block give the
// gradients of no recomputation, for a dense and a MoE model with dropout, gate noise and random token
// selection drawing from the stream the re-run rewinds, and the MoE losses keep their gradient.
#include <gtest/gtest.h>

#include <cmath>
#include <string>

#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/ops/ops.h"
#include "mt/train/gpt_from_recipe.h"
#include "train_run_util.h"

using namespace mt;
using namespace mt::testing;

namespace {

struct Grads {
  double loss = 0;
  std::vector<std::pair<std::string, std::vector<double>>> params;
};

// One forward and backward of a 2-layer model (f32) on fixed tokens; loss = cross-entropy + MoE losses.
Grads run(const std::string& moe, const std::string& recompute) {
  std::filesystem::path dir = fresh_dir("recompute");
  write_data(dir);
  Recipe r = load_recipe_string(recipe_text(dir, dir / "run", moe), "recompute.yaml", {"train.recompute=" + recompute});
  GPTConfig c = gpt_config_from_recipe(r);
  Generator init(7), stream(11);
  GPT model(c, init, stream);
  model.train();
  std::vector<int64_t> ids;
  for (int i = 0; i < 4 * 16; ++i) ids.push_back((i * 37 + 5) % 256);
  Tensor tokens = Tensor::from_vector<int64_t>(ids, {4, 16});
  Tensor logits = model.forward(tokens);  // (4, 16, V)
  Tensor targets = Tensor::from_vector<int64_t>(std::vector<int64_t>(ids.begin(), ids.end()), {64});
  Tensor loss = cross_entropy(logits.view({64, logits.size(-1)}), targets);
  if (Tensor aux = model.moe_loss(); aux.defined()) loss = add(loss, aux);
  loss.backward();
  Grads g{loss.item(), {}};
  for (const NamedParameter& p : model.named_parameters())
    g.params.push_back({p.name, p.tensor.grad().defined() ? p.tensor.grad().to_vector<double>() : std::vector<double>()});
  return g;
}

void expect_same_gradients(const std::string& moe) {
  Grads none = run(moe, "none");
  for (const std::string mode : {"attention", "block"}) {
    Grads other = run(moe, mode);
    EXPECT_EQ(other.loss, none.loss) << mode;
    ASSERT_EQ(other.params.size(), none.params.size());
    for (size_t i = 0; i < none.params.size(); ++i) {
      const auto& [name, want] = none.params[i];
      const std::vector<double>& got = other.params[i].second;
      ASSERT_EQ(got.size(), want.size()) << mode << " " << name;
      ASSERT_FALSE(want.empty()) << name << " got no gradient";
      double scale = 0;
      for (double w : want) scale = std::max(scale, std::abs(w));
      for (size_t j = 0; j < want.size(); ++j)
        ASSERT_NEAR(got[j], want[j], 1e-6 * scale) << mode << ": " << name << " element " << j;
    }
  }
}

}  // namespace

TEST(Recompute, DenseModelWithDropoutGetsTheSameGradients) { expect_same_gradients(""); }

TEST(Recompute, MoeModelWithNoiseAndRandomTokenSelectionGetsTheSameGradients) {
  expect_same_gradients(
      "moe: {experts: 4, every: 1, top_k: 2, noisy_gate: rsample, capacity_factor: 1.0, z_loss_coef: 0.01}\n");
  expect_same_gradients(
      "moe: {experts: [2, 4], every: 1, mlp_type: residual, noisy_gate: jitter, random_token_selection: true}\n");
}
