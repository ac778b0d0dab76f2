// LR schedule tests: warmup values, cosine and linear decay to the floor, constant, state dict
// round trip and bad configurations.
#include <gtest/gtest.h>

#include <cmath>
#include <numbers>

#include "mt/optim/lr_schedule.h"

using namespace mt;

TEST(LrSchedule, WarmupThenCosineToFloor) {
  LrSchedule s({.lr = 1.0, .warmup_steps = 4, .total_steps = 14, .decay = LrDecay::kCosine, .min_lr_ratio = 0.1});
  EXPECT_DOUBLE_EQ(s.lr_at(0), 0.25);
  EXPECT_DOUBLE_EQ(s.lr_at(3), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(4), 1.0);
  EXPECT_DOUBLE_EQ(s.lr_at(9), 0.1 + 0.9 * 0.5);  // halfway: cos(pi/2) = 0
  EXPECT_NEAR(s.lr_at(6), 0.1 + 0.9 * 0.5 * (1 + std::cos(std::numbers::pi * 0.2)), 1e-15);
  EXPECT_DOUBLE_EQ(s.lr_at(14), 0.1);
  EXPECT_DOUBLE_EQ(s.lr_at(1000), 0.1);
}

TEST(LrSchedule, WarmupThenLinearAndConstant) {
  LrSchedule lin({.lr = 2.0, .warmup_steps = 2, .total_steps = 12, .decay = LrDecay::kLinear, .min_lr_ratio = 0.0});
  EXPECT_DOUBLE_EQ(lin.lr_at(0), 1.0);
  EXPECT_DOUBLE_EQ(lin.lr_at(2), 2.0);
  EXPECT_DOUBLE_EQ(lin.lr_at(7), 1.0);
  EXPECT_DOUBLE_EQ(lin.lr_at(12), 0.0);
  LrSchedule c({.lr = 3.0, .warmup_steps = 0, .decay = LrDecay::kConstant});
  EXPECT_DOUBLE_EQ(c.lr_at(0), 3.0);
  EXPECT_DOUBLE_EQ(c.lr_at(12345), 3.0);
}

TEST(LrSchedule, StateDictRestoresConfigAndStep) {
  LrSchedule a({.lr = 6e-4, .warmup_steps = 10, .total_steps = 100, .decay = LrDecay::kLinear, .min_lr_ratio = 0.2});
  for (int i = 0; i < 37; ++i) a.advance();
  LrSchedule b({.lr = 1.0, .decay = LrDecay::kConstant});
  b.load_state_dict(a.state_dict());
  EXPECT_EQ(b.step(), 37);
  EXPECT_EQ(b.config().decay, LrDecay::kLinear);
  EXPECT_EQ(b.lr(), a.lr());
  StateDict bad = a.state_dict();
  bad.erase("warmup_steps");
  EXPECT_THROW(b.load_state_dict(bad), Error);
}

TEST(LrSchedule, RefusesBadConfigs) {
  EXPECT_THROW(LrSchedule({.lr = 1.0, .warmup_steps = 10, .total_steps = 10, .decay = LrDecay::kCosine}), Error);
  EXPECT_THROW(LrSchedule({.lr = 1.0, .total_steps = 10, .min_lr_ratio = 1.5}), Error);
  LrSchedule s({.lr = 1.0, .decay = LrDecay::kConstant});
  EXPECT_THROW(s.lr_at(-1), Error);
}
