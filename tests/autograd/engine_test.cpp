// Autograd engine tests: fan-in accumulation (in place where a node can), leaf accumulation across calls
// (in f32 for bf16/f16 leaves), retain_graph, freed graphs, the version check on saved tensors, no-grad
// mode, and gradcheck.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "mt/autograd/engine.h"
#include "mt/autograd/gradcheck.h"
#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
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
    add_(h, ones({2}, {DType::kF64}));
  }
  try {
    y.backward();
    FAIL() << "expected the version check to fire";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("modified in place"), std::string::npos) << e.what();
  }
}

TEST(Engine, NoGradGuardRecordsNothing) {
  Tensor x = ones({2}, {DType::kF64});
  x.set_requires_grad(true);
  NoGradGuard ng;
  Tensor y = mul(x, x);
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
}

TEST(Engine, DeepChainRunsWithoutRecursion) {
  Tensor x = ones({1}, {DType::kF64});
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
  Tensor one = ones({1}, {DType::kF64});
  run_backward({y, y}, {one, one}, RetainGraph::kNo);
  EXPECT_EQ(x.grad().item(), 4.0);  // (1 + 1) * 2
}

// Note [f32 main gradients]: 32 micro-batch gradients of a bf16 leaf, each a bf16 tensor of values
// in [0.5, 1.5) / 32 (as a loss divided by grad_accum gives), sum in f32. Recursive summation of n
// terms in f32 errs by at most (n - 1) * 2^-24 * sum |g_i| per element: the bound checked against the
// exact (f64) sum. The former bf16 accumulation (the same add_ into a bf16 tensor) misses it by far.
TEST(Engine, HalfLeafGradientsAccumulateInF32) {
  const int micro = 32;
  const int64_t n = 512;
  for (DType dtype : {DType::kBF16, DType::kF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    Tensor w = zeros({n}, {dtype});
    w.set_requires_grad(true);
    Generator gen(5);
    std::vector<double> exact(n, 0.0), abs_sum(n, 0.0);
    Tensor half_sum;  // the old accumulation: in the leaf's dtype
    for (int i = 0; i < micro; ++i) {
      Tensor c = uniform({n}, 0.5 / micro, 1.5 / micro, gen, {dtype});  // the gradient of sum(w * c)
      sum(mul(w, c)).backward();
      std::vector<double> ci = c.to_vector<double>();
      for (int64_t j = 0; j < n; ++j) {
        exact[j] += ci[j];
        abs_sum[j] += std::abs(ci[j]);
      }
      if (i == 0)
        half_sum = c.clone();
      else
        add_(half_sum, c);
    }
    ASSERT_EQ(w.grad().dtype(), DType::kF32);
    EXPECT_EQ(w.dtype(), dtype);
    std::vector<double> got = w.grad().to_vector<double>(), old = half_sum.to_vector<double>();
    const double u = std::ldexp(1.0, -24);
    double worst = 0, worst_old = 0;  // error / bound
    for (int64_t j = 0; j < n; ++j) {
      double bound = (micro - 1) * u * abs_sum[j];
      worst = std::max(worst, std::abs(got[j] - exact[j]) / bound);
      worst_old = std::max(worst_old, std::abs(old[j] - exact[j]) / bound);
    }
    EXPECT_LE(worst, 1.0) << "f32 accumulation exceeds its error bound";
    EXPECT_GT(worst_old, 100.0) << "accumulating in the leaf's dtype should miss the f32 bound by far";
  }
}

// Note [Gradients added in place]: x feeds a one-input node that can add its gradient in place, then
// mul (recorded later, so its backward runs first and leaves the only handle on x's first gradient).
TEST(Engine, AOneInputNodeAddsItsGradientIntoOneAlreadyWaiting) {
  Tensor x = Tensor::from_vector<double>({1, 2, 3}, {3});
  x.set_requires_grad(true);
  int applied = 0, accumulated = 0;
  auto twice = [&] {  // y = 2x by a node with both forms
    Tensor y = mul(x.detach(), 2.0);
    record_function(
        "Twice", {x}, {y},
        [&](const std::vector<Tensor>& g) {
          ++applied;
          return std::vector<Tensor>{mul(g[0], 2.0)};
        },
        [&](const std::vector<Tensor>& g, const Tensor& sum) {
          ++accumulated;
          add_(sum, mul(g[0], 2.0));
          return true;
        });
    return y;
  };
  Tensor y = twice(), z = mul(x, 3.0);  // in this order (a function's arguments have none)
  sum(add(y, z)).backward();
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5, 5, 5}));
  EXPECT_EQ(accumulated, 1);
  EXPECT_EQ(applied, 0);
  x.zero_grad();
  sum(twice()).backward();  // nothing waiting: the node runs as usual
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
  EXPECT_EQ(accumulated, 1);
  EXPECT_EQ(applied, 1);
}

// A tied bf16 embedding: the head's f32 gradient arrives first and the embedding's rows are added into it
// in f32. Two rows of one token (1 and 2^-9) sum to 1 + 2^-9, which bf16 cannot hold: the former path (the
// rows summed into a bf16 gradient, then added) gave 1.
TEST(Engine, ATiedHalfEmbeddingAddsItsRowsIntoTheHeadsF32Gradient) {
  Tensor w = zeros({4, 2}, {DType::kBF16});
  w.set_requires_grad(true);
  Tensor x = Tensor::from_vector<double>({1, 0}, {1, 2}).to(DType::kBF16);  // head: logits = x w^T
  Tensor c = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 4}).to(DType::kBF16);
  Tensor rows = index_select(w, 0, Tensor::from_vector<int64_t>({1, 1}, {2}));  // embedding: token 1 twice
  Tensor r = Tensor::from_vector<double>({1, 0, std::ldexp(1.0, -9), 0}, {2, 2}).to(DType::kBF16);
  add(sum(mul(linear(x, w, Tensor()), c)).to(DType::kF32), sum(mul(rows, r)).to(DType::kF32)).backward();
  ASSERT_EQ(w.grad().dtype(), DType::kF32);
  // head: dW[v] = c[v] x = (c[v], 0); embedding: row 1 gets (1 + 2^-9, 0)
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{1, 0, 3 + std::ldexp(1.0, -9), 0, 3, 0, 4, 0}));
}

TEST(Engine, FullPrecisionLeavesKeepGradientsOfTheirDtype) {
  for (DType dtype : {DType::kF32, DType::kF64}) {
    Tensor w = ones({3}, {dtype});
    w.set_requires_grad(true);
    sum(mul(w, w)).backward();
    EXPECT_EQ(w.grad().dtype(), dtype);
    EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{2, 2, 2}));
  }
}
