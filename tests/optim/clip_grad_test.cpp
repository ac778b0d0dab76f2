// clip_grad_norm tests: the global norm over several tensors, scaling above the limit, no change
// below it, half-precision and missing gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/optim/clip_grad.h"

using namespace mt;

namespace {

Tensor with_grad(const std::vector<float>& g, DType dtype = DType::kF32) {
  Shape s{static_cast<int64_t>(g.size())};
  Tensor p = Tensor::from_vector<float>(std::vector<float>(g.size(), 0.0f), s, dtype);
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector<float>(g, s, dtype));
  return p;
}

}  // namespace

TEST(ClipGradNorm, ScalesAllGradientsByTheGlobalNorm) {
  Tensor a = with_grad({3.0f, 4.0f}), b = with_grad({12.0f});  // norm 13
  double norm = clip_grad_norm({a, b}, 1.0);
  EXPECT_DOUBLE_EQ(norm, 13.0);
  double c = 1.0 / (13.0 + 1e-6);
  std::vector<float> ga = a.grad().to_vector<float>();
  EXPECT_FLOAT_EQ(ga[0], static_cast<float>(3 * c));
  EXPECT_FLOAT_EQ(ga[1], static_cast<float>(4 * c));
  EXPECT_FLOAT_EQ(static_cast<float>(b.grad().item()), static_cast<float>(12 * c));
}

TEST(ClipGradNorm, LeavesGradientsBelowTheLimit) {
  Tensor a = with_grad({0.3f, 0.4f});
  EXPECT_NEAR(clip_grad_norm({a}, 1.0), 0.5, 1e-7);
  EXPECT_EQ(a.grad().to_vector<float>(), (std::vector<float>{0.3f, 0.4f}));
}

TEST(ClipGradNorm, HalfGradientsAndMissingGradients) {
  Tensor a = with_grad({6.0f, 8.0f}, DType::kBF16);
  Tensor none = Tensor::from_vector<float>({1.0f}, {1});
  none.set_requires_grad(true);
  EXPECT_DOUBLE_EQ(clip_grad_norm({a, none}, 5.0), 10.0);
  std::vector<float> g = a.grad().to_vector<float>();
  EXPECT_NEAR(g[0], 3.0, 0.02);  // bf16 rounding of 3.0 and 4.0 is exact, the factor is not
  EXPECT_NEAR(g[1], 4.0, 0.02);
  EXPECT_FALSE(none.grad().defined());
  EXPECT_EQ(clip_grad_norm({none}, 1.0), 0.0);
}

TEST(ClipGradNorm, NonFiniteNormIsReturnedWithoutScaling) {
  Tensor a = with_grad({INFINITY, 1.0f});
  EXPECT_TRUE(std::isinf(clip_grad_norm({a}, 1.0)));
  EXPECT_EQ(a.grad().to_vector<float>()[1], 1.0f);
}
