// MoELayer tests: parameter names, an expert that gets no tokens, dropped tokens, counters and
// losses of the last forward, determinism of the noisy gate and RTS for a fixed generator, and
// an f64 gradcheck of the whole layer (gate included) for top-1 and top-2.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "mt/autograd/gradcheck.h"
#include "mt/graph/grad_mode.h"
#include "mt/nn/moe_dispatch.h"
#include "mt/nn/moe_layer.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

MoEConfig small_config(int64_t experts = 3, int64_t top_k = 1) {
  MoEConfig c;
  c.d_model = 4;
  c.hidden = 8;
  c.experts = experts;
  c.top_k = top_k;
  c.min_capacity = 0;
  c.random_token_selection = false;  // deterministic tables; RTS has its own test
  c.second_expert_sampling = false;
  return c;
}

void set_gate(MoELayer& layer, const std::vector<double>& values) {
  NoGradGuard ng;
  const Tensor& w = layer.gate().weight();
  w.copy_(Tensor::from_vector<double>(values, w.shape()).to(w.dtype()));
}

// Smallest gap, over tokens, between consecutive sorted logits among the top k + 1.
double routing_margin(const Tensor& x, const Tensor& gate_weight, int64_t k) {
  NoGradGuard ng;
  Tensor logits = matmul(x.reshape({-1, x.size(-1)}).to(DType::kF64), gate_weight.to(DType::kF64).transpose(0, 1));
  int64_t e = logits.size(1);
  std::vector<double> l = logits.to_vector<double>();
  double margin = 1e300;
  for (int64_t s = 0; s < logits.size(0); ++s) {
    std::vector<double> row(l.begin() + s * e, l.begin() + (s + 1) * e);
    std::sort(row.rbegin(), row.rend());
    for (int64_t j = 0; j < std::min(k, e - 1); ++j) margin = std::min(margin, row[j] - row[j + 1]);
  }
  return margin;
}

}  // namespace

TEST(MoELayer, ParameterNamesAreStable) {
  Generator gen(1);
  MoELayer layer(small_config(), gen);
  std::vector<std::string> names;
  for (const NamedParameter& p : layer.named_parameters()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"gate.weight", "experts.w1", "experts.b1", "experts.w2", "experts.b2"}));
  EXPECT_EQ(layer.gate().weight().shape(), (Shape{3, 4}));
  EXPECT_EQ(layer.gate().weight().dtype(), DType::kF32);
  EXPECT_EQ(layer.mlp(), nullptr);

  MoEConfig c = small_config();
  c.mlp_type = MlpType::kResidual;
  MoELayer residual(c, gen);
  names.clear();
  for (const NamedParameter& p : residual.named_parameters()) names.push_back(p.name);
  EXPECT_EQ(names, (std::vector<std::string>{"gate.weight", "experts.w1", "experts.b1", "experts.w2", "experts.b2",
                                             "mlp.fc.weight", "mlp.fc.bias", "mlp.proj.weight", "mlp.proj.bias",
                                             "coefficient.weight", "coefficient.bias"}));
  EXPECT_EQ(residual.coefficient()->weight().shape(), (Shape{2, 4}));
}

TEST(MoELayer, ResidualMixesExpertsAndMlpByALearnedCoefficient) {
  Generator gen(13);
  MoEConfig c = small_config(2, 1);
  c.mlp_type = MlpType::kResidual;
  c.capacity_factor = 4.0;  // nothing dropped
  MoELayer layer(c, gen);
  Tensor x = uniform({3, 4}, -1, 1, gen);
  Tensor out = layer.forward(x, gen);
  // Reference from the parts: softmax(coef(x)) weighs (experts' output, mlp(x)).
  NoGradGuard ng;
  RoutingResult r = layer.gate().forward(x, gen);
  Tensor moe = combine_tokens(layer.experts().forward(dispatch_tokens(x, r.table)), r.table);
  Tensor mix = softmax(layer.coefficient()->forward(x), -1);
  Tensor expected = add(mul(moe, mix.narrow(1, 0, 1)), mul(layer.mlp()->forward(x), mix.narrow(1, 1, 1)));
  std::vector<float> got = out.to_vector<float>(), want = expected.to_vector<float>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-6);
  for (float v : mix.to_vector<float>()) EXPECT_TRUE(v > 0.0f && v < 1.0f);
}

TEST(MoELayer, AnExpertWithNoTokensWorksForwardAndBackward) {
  Generator gen(2);
  MoELayer layer(small_config(3, 1), gen);
  // Positive inputs; expert 2's gate row is negative, so it never wins.
  set_gate(layer, {1, 0, 0.5, 0, 0, 1, 0, 0.5, -1, -1, -1, -1});
  Tensor x = uniform({2, 3, 4}, 0.1, 1.0, gen);
  Tensor out = layer.forward(x, gen);
  EXPECT_EQ(out.shape(), x.shape());
  EXPECT_EQ(layer.stats().routed()[2], 0);
  sum(out).backward();
  std::vector<float> g1 = layer.experts().w1().grad().to_vector<float>();
  std::vector<float> gb2 = layer.experts().b2().grad().to_vector<float>();
  const size_t per_expert = 4 * 8;
  for (size_t i = 0; i < g1.size(); ++i) ASSERT_TRUE(std::isfinite(g1[i]));
  for (size_t i = 2 * per_expert; i < 3 * per_expert; ++i) EXPECT_EQ(g1[i], 0.0f);
  for (size_t i = 8; i < 12; ++i) EXPECT_EQ(gb2[i], 0.0f);  // expert 2's b2
  double used = 0;
  for (size_t i = 0; i < 2 * per_expert; ++i) used += std::fabs(g1[i]);
  EXPECT_GT(used, 0.0);
  EXPECT_TRUE(layer.gate().weight().grad().defined());
}

TEST(MoELayer, DroppedTokensGetZeroAndAreCounted) {
  Generator gen(3);
  MoEConfig c = small_config(3, 1);
  MoELayer layer(c, gen);
  set_gate(layer, {1, 1, 1, 1, 0, 0, 0, 0, -1, -1, -1, -1});  // every positive token -> expert 0
  Tensor x = uniform({1, 6, 4}, 0.1, 1.0, gen);
  std::vector<float> out = layer.forward(x, gen).to_vector<float>();
  // capacity = ceil(6 / 3 * 1.0) = 2: tokens 0 and 1 kept, 2..5 dropped.
  EXPECT_EQ(layer.stats().capacity, 2);
  EXPECT_EQ(layer.stats().routed(), (std::vector<int64_t>{6, 0, 0}));
  EXPECT_EQ(layer.stats().kept(), (std::vector<int64_t>{2, 0, 0}));
  EXPECT_DOUBLE_EQ(layer.stats().drop_rate(), 4.0 / 6.0);
  for (int64_t t = 0; t < 6; ++t)
    for (int64_t i = 0; i < 4; ++i) {
      if (t < 2) EXPECT_NE(out[t * 4 + i], 0.0f) << "token " << t;
      else EXPECT_EQ(out[t * 4 + i], 0.0f) << "token " << t;
    }
  // Eval uses eval_capacity_factor.
  MoEConfig ce = c;
  ce.eval_capacity_factor = 3.0;
  Generator gen2(3);
  MoELayer wide(ce, gen2);
  set_gate(wide, {1, 1, 1, 1, 0, 0, 0, 0, -1, -1, -1, -1});
  wide.eval();
  wide.forward(x, gen2);
  EXPECT_EQ(wide.stats().capacity, 6);
  EXPECT_EQ(wide.stats().drop_rate(), 0.0);
}

TEST(MoELayer, ExposesTheLossesOfTheLastForward) {
  Generator gen(4);
  MoEConfig c = small_config(3, 2);
  c.aux_loss_coef = 0.5;
  c.z_loss_coef = 0.25;
  MoELayer layer(c, gen);
  EXPECT_THROW(layer.weighted_loss(), Error);
  Tensor x = uniform({2, 2, 4}, -1, 1, gen);
  layer.forward(x, gen);
  ASSERT_TRUE(layer.aux_loss().defined());
  EXPECT_EQ(layer.aux_loss().dim(), 0);
  EXPECT_GE(layer.aux_loss().item(), 0.0);
  EXPECT_NEAR(layer.weighted_loss().item(), 0.5 * layer.aux_loss().item() + 0.25 * layer.z_loss().item(), 1e-6);
  layer.weighted_loss().backward();
  EXPECT_TRUE(layer.gate().weight().grad().defined());
}

TEST(MoELayer, JitterIsDeterministicForAGeneratorAndOffInEval) {
  MoEConfig c = small_config(3, 1);
  c.noisy_gate = NoisyGate::kJitter;
  Generator init_a(5), init_b(5);
  MoELayer a(c, init_a), b(c, init_b);
  Generator data(6);
  Tensor x = uniform({2, 4, 4}, -1, 1, data);
  Generator ga(11), gb(11);
  std::vector<float> oa = a.forward(x, ga).to_vector<float>(), ob = b.forward(x, gb).to_vector<float>();
  EXPECT_EQ(oa, ob);
  EXPECT_GT(ga.state().offset, 0u);
  EXPECT_EQ(ga.state().offset, gb.state().offset);
  a.eval();
  Generator ge(11);
  a.forward(x, ge);
  EXPECT_EQ(ge.state().offset, 0u);
}

TEST(MoELayer, RandomTokenSelectionIsDeterministicForAGenerator) {
  MoEConfig c = small_config(3, 1);
  c.random_token_selection = true;
  Generator init(8);
  MoELayer layer(c, init);
  set_gate(layer, {1, 1, 1, 1, 0, 0, 0, 0, -1, -1, -1, -1});
  Generator data(9);
  Tensor x = uniform({1, 9, 4}, 0.1, 1.0, data);
  Generator g1(21), g2(21);
  std::vector<float> o1 = layer.forward(x, g1).to_vector<float>();
  EXPECT_EQ(layer.stats().kept(), (std::vector<int64_t>{3, 0, 0}));
  std::vector<float> o2 = layer.forward(x, g2).to_vector<float>();
  EXPECT_EQ(o1, o2);
  int kept_tokens = 0;
  for (int t = 0; t < 9; ++t) kept_tokens += o1[t * 4] != 0.0f;
  EXPECT_EQ(kept_tokens, 3);
}

struct GradcheckCase {
  int64_t top_k;
  MlpType mlp_type;
  uint64_t seed;  // one whose inputs have clear routing margins
};

class MoELayerGradcheck : public ::testing::TestWithParam<GradcheckCase> {};

TEST_P(MoELayerGradcheck, WholeLayerInF64) {
  const int64_t k = GetParam().top_k;
  MoEConfig c = small_config(3, k);
  c.mlp_type = GetParam().mlp_type;
  c.capacity_factor = 0.75;  // some tokens are dropped
  Generator gen(GetParam().seed);
  MoELayer layer(c, gen);
  layer.to(DType::kF64);
  {
    NoGradGuard ng;
    normal_(layer.gate().weight(), 0.0, 1.0, gen);  // logits of order 1: clear margins
    normal_(layer.experts().w1(), 0.0, 0.5, gen);
    normal_(layer.experts().w2(), 0.0, 0.5, gen);
    normal_(layer.experts().b1(), 0.0, 0.5, gen);
    normal_(layer.experts().b2(), 0.0, 0.5, gen);
  }
  Tensor x = uniform({2, 3, 4}, -1, 1, gen, {DType::kF64});
  ASSERT_GT(routing_margin(x, layer.gate().weight(), k), 1e-3) << "pick inputs with clear routing margins";
  x.set_requires_grad(true);

  std::vector<NamedParameter> params = layer.named_parameters();
  std::vector<Tensor> inputs = {x}, pristine;
  for (const NamedParameter& p : params) {
    inputs.push_back(p.tensor);
    pristine.push_back(p.tensor.detach().clone());
  }
  // gradcheck hands the parameters themselves, or a perturbed copy of one of them: load the
  // copy, and reload the original values of the others (a previous call may have perturbed them).
  auto fn = [&](const std::vector<Tensor>& in) {
    StateDict state;
    for (size_t i = 0; i < params.size(); ++i) state[params[i].name] = in[i + 1].is_same(params[i].tensor) ? pristine[i] : in[i + 1];
    layer.load_state_dict(state, Strict::kNo);
    Generator g(0);
    Tensor out = layer.forward(in[0], g);
    return cat({out.reshape({-1}), layer.aux_loss().reshape({1}), layer.z_loss().reshape({1})}, 0);
  };
  GradcheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_GT(layer.stats().drop_rate(), 0.0);
}

INSTANTIATE_TEST_SUITE_P(Layers, MoELayerGradcheck,
                         ::testing::Values(GradcheckCase{1, MlpType::kStandard, 12},
                                           GradcheckCase{2, MlpType::kStandard, 12},
                                           GradcheckCase{1, MlpType::kResidual, 13}),
                         [](const auto& info) {
                           return std::string(info.param.mlp_type == MlpType::kResidual ? "Residual" : "Standard") +
                                  "Top" + std::to_string(info.param.top_k);
                         });
