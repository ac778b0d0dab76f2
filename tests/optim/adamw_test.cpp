// AdamW tests: a hand-computed two-step value, decay groups, f32 masters for bf16 parameters (and
// their f32 main gradients), parameters without gradients, bit-exact resume, and load errors.
#include <gtest/gtest.h>

#include "mt/ops/ops.h"
#include "mt/optim/adamw.h"

using namespace mt;

namespace {

Tensor leaf(const std::vector<float>& v, DType dtype = DType::kF32) {
  Tensor t = Tensor::from_vector<float>(v, {static_cast<int64_t>(v.size())}, dtype);
  t.set_requires_grad(true);
  return t;
}

void set_grad(const Tensor& p, const std::vector<float>& g) {
  p.set_grad(Tensor::from_vector<float>(g, p.shape(), p.dtype()));
}

std::vector<ParamGroup> one_group(const Tensor& p, WeightDecay wd = WeightDecay::kApply) {
  return {ParamGroup{{NamedParameter{"p", p, ParamKind::kWeight}}, wd}};
}

}  // namespace

TEST(AdamW, MatchesHandComputedTwoSteps) {
  // lr 0.1, betas (0.9, 0.999), eps 1e-8, wd 0.1, grads 0.5 then -0.25:
  // step 1: p = 0.99 - 0.1 * 0.5 / (0.5 + 1e-8) = 0.890000002
  // step 2: p = 0.8811 - 0.1/0.19 * 0.02 / (sqrt(0.00031225/0.001999) + 1e-8) = 0.8544662987
  Tensor p = leaf({1.0f});
  AdamW opt(one_group(p), {.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1});
  set_grad(p, {0.5f});
  opt.step();
  EXPECT_NEAR(p.item(), 0.890000002, 1e-7);
  set_grad(p, {-0.25f});
  opt.step();
  EXPECT_NEAR(p.item(), 0.8544662987, 1e-6);
  EXPECT_EQ(opt.step_count(), 2);
  StateDict s = opt.state_dict();
  EXPECT_NEAR(s.at("state.p.exp_avg").item(), 0.02, 1e-8);
  EXPECT_NEAR(s.at("state.p.exp_avg_sq").item(), 0.00031225, 1e-8);  // f32 betas
}

// Note [Clipping in the update]: step(scale) gives the bits of scaling the f32 gradients first, then step().
TEST(AdamW, StepWithGradScaleEqualsScalingTheGradientsFirst) {
  for (DType dtype : {DType::kF32, DType::kBF16}) {
    Tensor a = leaf({1.0f, -2.0f, 0.5f}, dtype), b = leaf({1.0f, -2.0f, 0.5f}, dtype);
    AdamWConfig config{.lr = 0.1, .beta1 = 0.9, .beta2 = 0.999, .eps = 1e-8, .weight_decay = 0.1};
    AdamW in_update(one_group(a), config), separate(one_group(b), config);
    for (float scale : {0.37f, 1.0f, 0.011f}) {
      std::vector<float> g{0.3f, -1.7f, 2.5f};
      a.set_grad(Tensor::from_vector<float>(g, a.shape(), DType::kF32));  // the f32 main gradient
      b.set_grad(Tensor::from_vector<float>(g, b.shape(), DType::kF32));
      in_update.step(scale);
      mul_(b.grad(), static_cast<double>(scale));
      separate.step();
      EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>()) << dtype_name(dtype) << " scale " << scale;
    }
  }
}

TEST(AdamW, NoDecayGroupSkipsWeightDecay) {
  // With a zero gradient the Adam term is 0 and only decay moves the parameter.
  Tensor a = leaf({2.0f}), b = leaf({2.0f});
  std::vector<ParamGroup> groups{{{{"a", a, ParamKind::kWeight}}, WeightDecay::kApply},
                                 {{{"b", b, ParamKind::kBias}}, WeightDecay::kSkip}};
  AdamW opt(groups, {.lr = 0.1, .weight_decay = 0.5});
  set_grad(a, {0.0f});
  set_grad(b, {0.0f});
  opt.step();
  EXPECT_FLOAT_EQ(static_cast<float>(a.item()), 2.0f * (1.0f - 0.05f));
  EXPECT_FLOAT_EQ(static_cast<float>(b.item()), 2.0f);
}

TEST(AdamW, WeightDecayGroupsFollowParamKinds) {
  auto t = [] { return leaf({1.0f}); };
  std::vector<NamedParameter> ps{{"w", t(), ParamKind::kWeight},
                                 {"b", t(), ParamKind::kBias},
                                 {"ln.weight", t(), ParamKind::kNorm},
                                 {"wte.weight", t(), ParamKind::kEmbedding}};
  auto names = [](const ParamGroup& g) {
    std::vector<std::string> n;
    for (const auto& p : g.params) n.push_back(p.name);
    return n;
  };
  auto no = weight_decay_groups(ps, EmbeddingDecay::kNo);
  ASSERT_EQ(no.size(), 2u);
  EXPECT_EQ(no[0].weight_decay, WeightDecay::kApply);
  EXPECT_EQ(names(no[0]), (std::vector<std::string>{"w"}));
  EXPECT_EQ(names(no[1]), (std::vector<std::string>{"b", "ln.weight", "wte.weight"}));
  auto yes = weight_decay_groups(ps, EmbeddingDecay::kYes);
  EXPECT_EQ(names(yes[0]), (std::vector<std::string>{"w", "wte.weight"}));
}

TEST(AdamW, Bf16ParameterUpdatesItsF32Master) {
  // lr 1e-4: each step moves the master by about 1e-4, far below half a bf16 ulp at 1.0 (2^-9).
  Tensor p = leaf({1.0f, -1.0f}, DType::kBF16);
  AdamW opt(one_group(p), {.lr = 1e-4, .weight_decay = 0.0});
  ASSERT_TRUE(opt.master("p").defined());
  EXPECT_EQ(opt.master("p").dtype(), DType::kF32);
  for (int i = 0; i < 3; ++i) {
    set_grad(p, {1.0f, -1.0f});
    opt.step();
  }
  std::vector<float> master = opt.master("p").to_vector<float>();
  EXPECT_NEAR(master[0], 1.0 - 3e-4, 1e-6);
  EXPECT_NEAR(master[1], -1.0 + 3e-4, 1e-6);
  EXPECT_EQ(p.to_vector<float>(), (std::vector<float>{1.0f, -1.0f}));  // under one bf16 ulp: unchanged
  // Enough steps and the rounded master crosses into the next bf16 value below 1.0.
  for (int i = 0; i < 30; ++i) {
    set_grad(p, {1.0f, -1.0f});
    opt.step();
  }
  std::vector<float> now = p.to_vector<float>();
  EXPECT_EQ(now[0], static_cast<float>(bf16(opt.master("p").to_vector<float>()[0])));
  EXPECT_LT(now[0], 1.0f);
}

// Note [f32 main gradients]: a bf16 parameter's f32 gradient reaches its master unrounded, so the
// master follows an f32 parameter given the same gradients bit for bit.
TEST(AdamW, Bf16ParameterWithF32GradientTracksTheF32Update) {
  Tensor p32 = leaf({0.5f, -0.25f, 2.0f}), p16 = leaf({0.5f, -0.25f, 2.0f}, DType::kBF16);
  AdamW ref(one_group(p32), {.lr = 1e-2}), opt(one_group(p16), {.lr = 1e-2});
  for (int s = 0; s < 5; ++s) {
    std::vector<float> g = {0.1f + 0.01f * s, -0.3f, 1e-3f};  // not bf16 values
    p32.set_grad(Tensor::from_vector<float>(g, {3}));
    p16.set_grad(Tensor::from_vector<float>(g, {3}));
    ref.step();
    opt.step();
  }
  EXPECT_EQ(opt.master("p").to_vector<float>(), p32.to_vector<float>());
}

TEST(AdamW, ParameterWithoutGradientIsLeftAlone) {
  Tensor a = leaf({1.0f}), b = leaf({1.0f});
  std::vector<ParamGroup> groups{{{{"a", a, ParamKind::kWeight}, {"b", b, ParamKind::kWeight}}, WeightDecay::kApply}};
  AdamW opt(groups, {.lr = 0.1, .weight_decay = 0.1});
  set_grad(a, {1.0f});
  opt.step();
  EXPECT_NE(a.item(), 1.0);
  EXPECT_EQ(b.item(), 1.0);
  EXPECT_EQ(opt.state_dict().at("state.b.exp_avg").item(), 0.0);
}

TEST(AdamW, ResumesBitExactlyFromStateDict) {
  auto grads = [](int step) {
    return std::vector<float>{0.3f * step - 1.0f, 0.7f / (step + 1), -0.2f * step * step};
  };
  auto cfg = AdamWConfig{.lr = 3e-2, .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8, .weight_decay = 0.1};
  // Reference: six uninterrupted steps on a bf16 parameter (exercises the master too).
  Tensor ref = leaf({0.5f, -0.25f, 2.0f}, DType::kBF16);
  AdamW ref_opt(one_group(ref), cfg);
  for (int s = 0; s < 6; ++s) {
    set_grad(ref, grads(s));
    ref_opt.step();
  }
  // Three steps, snapshot, then a fresh optimizer loads the snapshot and runs three more.
  Tensor p = leaf({0.5f, -0.25f, 2.0f}, DType::kBF16);
  StateDict snapshot;
  Tensor p_snapshot;
  {
    AdamW opt(one_group(p), cfg);
    for (int s = 0; s < 3; ++s) {
      set_grad(p, grads(s));
      opt.step();
    }
    for (const auto& [k, v] : opt.state_dict()) snapshot[k] = v.clone();
    p_snapshot = p.detach().clone();
    set_grad(p, grads(9));
    opt.step();  // moves on past the snapshot, which must not change
  }
  Tensor q = leaf({0.0f, 0.0f, 0.0f}, DType::kBF16);
  q.detach().copy_(p_snapshot);
  AdamW opt2(one_group(q), cfg);
  opt2.load_state_dict(snapshot);
  EXPECT_EQ(opt2.step_count(), 3);
  for (int s = 3; s < 6; ++s) {
    set_grad(q, grads(s));
    opt2.step();
  }
  EXPECT_EQ(q.to_vector<float>(), ref.to_vector<float>());
  StateDict a = ref_opt.state_dict(), b = opt2.state_dict();
  for (const auto& [k, v] : a) EXPECT_EQ(v.to_vector<double>(), b.at(k).to_vector<double>()) << k;
}

TEST(AdamW, LoadStateDictNamesBadKeys) {
  Tensor p = leaf({1.0f, 2.0f});
  AdamW opt(one_group(p), {});
  StateDict good;
  for (const auto& [k, v] : opt.state_dict()) good[k] = v.clone();
  auto message = [&](const StateDict& s) {
    try {
      opt.load_state_dict(s);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  StateDict missing = good;
  missing.erase("state.p.exp_avg_sq");
  EXPECT_NE(message(missing).find("missing key 'state.p.exp_avg_sq'"), std::string::npos) << message(missing);
  StateDict extra = good;
  extra["state.q.exp_avg"] = zeros({2});
  EXPECT_NE(message(extra).find("unexpected key 'state.q.exp_avg'"), std::string::npos) << message(extra);
  StateDict wrong = good;
  wrong["state.p.exp_avg"] = zeros({3});
  std::string m = message(wrong);
  EXPECT_NE(m.find("'state.p.exp_avg'"), std::string::npos) << m;
  EXPECT_NE(m.find("[3]"), std::string::npos) << m;
  EXPECT_NE(m.find("[2]"), std::string::npos) << m;
}

TEST(AdamW, RefusesUnsupportedParameters) {
  Tensor d = Tensor::from_vector<double>({1.0}, {1});
  d.set_requires_grad(true);
  EXPECT_THROW(AdamW(one_group(d), {}), Error);
  Tensor p = leaf({1.0f});
  std::vector<ParamGroup> twice{{{{"p", p, ParamKind::kWeight}, {"p", p, ParamKind::kWeight}}, WeightDecay::kApply}};
  EXPECT_THROW(AdamW(twice, {}), Error);
  EXPECT_THROW(AdamW(one_group(p), {.beta1 = 1.0}), Error);
}
