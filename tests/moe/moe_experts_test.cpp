// Experts tests: parameter shapes and names, the batched FFN against a scalar reference per
// expert, and an input-shape error.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/nn/moe_experts.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

double gelu_tanh(double x) {
  return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x)));
}

}  // namespace

TEST(Experts, ParametersAreStackedByExpert) {
  Generator gen(1);
  Experts experts(3, 4, 8, gen);
  std::vector<NamedParameter> params = experts.named_parameters();
  ASSERT_EQ(params.size(), 4u);
  EXPECT_EQ(params[0].name, "w1");
  EXPECT_EQ(params[0].tensor.shape(), (Shape{3, 4, 8}));
  EXPECT_EQ(params[1].name, "b1");
  EXPECT_EQ(params[1].tensor.shape(), (Shape{3, 1, 8}));
  EXPECT_EQ(params[1].kind, ParamKind::kBias);
  EXPECT_EQ(params[2].name, "w2");
  EXPECT_EQ(params[2].tensor.shape(), (Shape{3, 8, 4}));
  EXPECT_EQ(params[3].name, "b2");
  EXPECT_EQ(params[3].tensor.shape(), (Shape{3, 1, 4}));
}

TEST(Experts, EachExpertRunsItsOwnFfn) {
  const int64_t E = 2, C = 3, d = 2, h = 3;
  Generator gen(7);
  Experts experts(E, d, h, gen, /*std=*/0.5);
  {
    NoGradGuard ng;
    uniform_(experts.b1(), -0.5, 0.5, gen);
    uniform_(experts.b2(), -0.5, 0.5, gen);
  }
  Tensor buffer = uniform({E, C, d}, -1, 1, gen);
  std::vector<float> out = experts.forward(buffer).to_vector<float>();
  std::vector<float> x = buffer.to_vector<float>(), w1 = experts.w1().to_vector<float>(),
                     b1 = experts.b1().to_vector<float>(), w2 = experts.w2().to_vector<float>(),
                     b2 = experts.b2().to_vector<float>();
  for (int64_t e = 0; e < E; ++e)
    for (int64_t c = 0; c < C; ++c) {
      std::vector<double> hid(h);
      for (int64_t j = 0; j < h; ++j) {
        double s = b1[e * h + j];
        for (int64_t i = 0; i < d; ++i) s += x[(e * C + c) * d + i] * w1[(e * d + i) * h + j];
        hid[j] = gelu_tanh(s);
      }
      for (int64_t i = 0; i < d; ++i) {
        double s = b2[e * d + i];
        for (int64_t j = 0; j < h; ++j) s += hid[j] * w2[(e * h + j) * d + i];
        EXPECT_NEAR(out[(e * C + c) * d + i], s, 1e-5) << "expert " << e << " slot " << c << " dim " << i;
      }
    }
}

TEST(Experts, RejectsABufferOfTheWrongShape) {
  Generator gen(1);
  Experts experts(2, 4, 8, gen);
  EXPECT_THROW(experts.forward(zeros({3, 2, 4})), Error);
  EXPECT_THROW(experts.forward(zeros({2, 2, 5})), Error);
}
