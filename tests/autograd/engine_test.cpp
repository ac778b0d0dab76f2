// Autograd engine tests: fan-in accumulation, leaf accumulation across calls, retain_graph,
// freed graphs, the version check on saved tensors, no-grad mode, and gradcheck itself.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/autograd/engine.h"
#include "mt/autograd/grad_mode.h"
#include "mt/autograd/gradcheck.h"
#include "mt/ops/ops.h"

using namespace mt;

TEST(Engine, FanInSumsGradients) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.set_requires_grad(true);
  Tensor y = add(mul(x, x), mul(x, 3.0));  // dy/dx = 2x + 3
  sum(y).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 7, 9}));
}

TEST(Engine, LeafGradientsAccumulateAcrossBackwardCalls) {
  Tensor x = Tensor::from_vector<double>({2}, {1});
  x.set_requires_grad(true);
  sum(mul(x, x)).backward();
  sum(mul(x, x)).backward();
  EXPECT_EQ(x.grad().item(), 8.0);
  x.zero_grad();
  EXPECT_FALSE(x.grad().defined());
}

TEST(Engine, RetainGraphAllowsSecondBackwardAndReleaseRefusesIt) {
  Tensor x = Tensor::from_vector<double>({3}, {1});
  x.set_requires_grad(true);
  Tensor y = sum(exp(x));
  y.backward(Tensor(), /*retain_graph=*/true);
  y.backward();
  EXPECT_NEAR(x.grad().item(), 2 * std::exp(3.0), 1e-12);
  EXPECT_THROW(y.backward(), Error);
}

TEST(Engine, InPlaceChangeToSavedTensorIsAnError) {
  Tensor x = Tensor::from_vector<double>({1, 2}, {2});
  x.set_requires_grad(true);
  Tensor h = mul(x, 2.0);
  Tensor y = sum(mul(h, h));  // saves h
  {
    NoGradGuard ng;
    add_(h, ones({2}, {DType::F64}));
  }
  try {
    y.backward();
    FAIL() << "expected the version check to fire";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("modified in place"), std::string::npos) << e.what();
  }
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = ones({2}, {DType::F64});
  x.set_requires_grad(true);
  NoGradGuard ng;
  Tensor y = mul(x, x);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
}

TEST(Engine, DeepChainRunsWithoutRecursion) {
  Tensor x = ones({1}, {DType::F64});
  x.set_requires_grad(true);
  Tensor y = x;
  for (int i = 0; i < 20000; ++i) y = add(y, 0.0);
  sum(y).backward();
  EXPECT_EQ(x.grad().item(), 1.0);
}

TEST(Gradcheck, DetectsAWrongGradient) {
  // A function whose recorded backward is deliberately wrong: y = x * 2 but gradient recorded as 3.
  Tensor x = Tensor::from_vector<double>({0.3, -0.7}, {2});
  x.set_requires_grad(true);
  auto wrong = [](const std::vector<Tensor>& in) {
    Tensor y;
    {
      NoGradGuard ng;
      y = mul(in[0], 2.0);
    }
    return add(y, sub(mul(in[0], 3.0), mul(in[0].detach(), 3.0)));
  };
  EXPECT_FALSE(gradcheck(wrong, {x}).ok);
  auto right = [](const std::vector<Tensor>& in) { return mul(in[0], 2.0); };
  EXPECT_TRUE(gradcheck(right, {x}).ok);
}

TEST(Engine, TheSameRootTwiceSumsItsSeedsAndRunsOnce) {
  Tensor x = Tensor::from_vector<double>({1.5}, {1});
  x.set_requires_grad(true);
  Tensor y = mul(x, 2.0);
  Tensor one = ones({1}, {DType::F64});
  run_backward({y, y}, {one, one}, RetainGraph::kNo);
  EXPECT_EQ(x.grad().item(), 4.0);  // (1 + 1) * 2
}
