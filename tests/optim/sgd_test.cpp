// SGD tests: hand-computed momentum steps with weight decay, and plain SGD without momentum.
#include <gtest/gtest.h>

#include "mt/optim/sgd.h"

using namespace mt;

namespace {

Tensor leaf(float v, DType dtype = DType::kF32) {
  Tensor t = Tensor::from_vector<float>({v}, {1}, dtype);
  t.set_requires_grad(true);
  return t;
}

std::vector<ParamGroup> one_group(const Tensor& p) { return {ParamGroup{{{"p", p, ParamKind::kWeight}}, WeightDecay::kApply}}; }

}  // namespace

TEST(Sgd, MomentumAndWeightDecayMatchHandComputedSteps) {
  // lr 0.1, momentum 0.9, wd 0.01; grads 0.5, -0.25:
  // d1 = 0.51, buf = 0.51, p = 0.949; d2 = -0.24051, buf = 0.21849, p = 0.927151.
  Tensor p = leaf(1.0f);
  Sgd opt(one_group(p), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  p.set_grad(Tensor::from_vector<float>({0.5f}, {1}));
  opt.step();
  EXPECT_NEAR(p.item(), 0.949, 1e-7);
  p.set_grad(Tensor::from_vector<float>({-0.25f}, {1}));
  opt.step();
  EXPECT_NEAR(p.item(), 0.927151, 1e-6);
  EXPECT_NEAR(opt.state_dict().at("state.p.momentum_buffer").item(), 0.21849, 1e-7);
}

TEST(Sgd, WithoutMomentumIsPlainGradientDescent) {
  Tensor p = leaf(2.0f);
  Sgd opt(one_group(p), {.lr = 0.5});
  p.set_grad(Tensor::from_vector<float>({0.25f}, {1}));
  opt.step();
  opt.step();
  EXPECT_FLOAT_EQ(static_cast<float>(p.item()), 1.75f);
}

TEST(Sgd, StepWithGradScaleScalesTheGradientOnly) {
  // d = 0.5 * 0.25 + 0.01 * 1 = 0.135 (weight decay unscaled); p = 1 - 0.1 * 0.135.
  Tensor p = leaf(1.0f);
  Sgd opt(one_group(p), {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01});
  p.set_grad(Tensor::from_vector<float>({0.5f}, {1}));
  opt.step(0.25);
  EXPECT_NEAR(p.item(), 0.9865, 1e-7);
  EXPECT_NEAR(opt.state_dict().at("state.p.momentum_buffer").item(), 0.135, 1e-7);
}

TEST(Sgd, Bf16ParameterKeepsMaster) {
  Tensor p = leaf(1.0f, DType::kBF16);
  Sgd opt(one_group(p), {.lr = 1e-3});
  p.set_grad(Tensor::from_vector<float>({1.0f}, {1}, DType::kBF16));
  opt.step();
  EXPECT_NEAR(opt.master("p").item(), 0.999, 1e-7);
  EXPECT_EQ(p.item(), 1.0);
}
