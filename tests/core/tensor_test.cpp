// Core tensor tests: views share storage, strides, contiguous copies, casts, errors that name shapes/dtypes/devices.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/core/generator.h"
#include "mt/ops/ops.h"

using namespace mt;

TEST(Tensor, FromVectorRoundTripsEveryDtype) {
  auto t = Tensor::from_vector<float>({1.5f, -2.f, 3.f, 0.f}, {2, 2});
  EXPECT_EQ(t.to_vector<double>(), (std::vector<double>{1.5, -2, 3, 0}));
  EXPECT_EQ(t.to(DType::kBF16).to_vector<float>(), (std::vector<float>{1.5f, -2.f, 3.f, 0.f}));
  EXPECT_EQ(t.to(DType::kF16).to_vector<float>(), (std::vector<float>{1.5f, -2.f, 3.f, 0.f}));
  EXPECT_EQ(t.to(DType::kI64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 3, 0}));
  EXPECT_EQ(t.to(DType::kBool).to_vector<bool>(), (std::vector<bool>{true, true, true, false}));
}

TEST(Tensor, HalfRoundingIsNearestEven) {
  EXPECT_EQ(static_cast<float>(bf16(1.00390625f)), 1.0f);       // halfway, rounds to even
  EXPECT_EQ(static_cast<float>(bf16(1.01171875f)), 1.015625f);  // halfway, rounds up to even
  EXPECT_EQ(static_cast<float>(f16(65504.f)), 65504.f);
  EXPECT_TRUE(std::isinf(static_cast<float>(f16(70000.f))));
  EXPECT_EQ(static_cast<float>(f16(5.960464477539063e-08f)), 5.960464477539063e-08f);  // smallest subnormal
}

TEST(Tensor, ViewsShareStorageAndTrackStrides) {
  Tensor a = arange(0, 12).view({3, 4});
  Tensor t = a.transpose(0, 1);  // (4, 3)
  EXPECT_EQ(t.shape(), Shape({4, 3}));
  EXPECT_EQ(t.strides(), Shape({1, 4}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.contiguous().to_vector<float>(), (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  Tensor n = a.narrow(1, 1, 2);  // (3, 2)
  EXPECT_EQ(n.contiguous().to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 9, 10}));
  fill_(n, -1);
  EXPECT_EQ(a.to_vector<float>()[1], -1.f);
  Tensor e = arange(0, 3).view({3, 1}).expand({3, 2});
  EXPECT_EQ(e.strides(), Shape({1, 0}));
  EXPECT_EQ(e.contiguous().to_vector<float>(), (std::vector<float>{0, 0, 1, 1, 2, 2}));
  EXPECT_EQ(a.select(0, 2).shape(), Shape({4}));
  EXPECT_THROW(t.view({12}), Error);
  EXPECT_EQ(t.reshape({12}).to_vector<float>()[1], 4.f);
}

TEST(Tensor, CloneIsDeep) {
  Tensor a = ones({3});
  Tensor b = a.clone();
  fill_(b, 2);
  EXPECT_EQ(a.to_vector<float>(), (std::vector<float>{1, 1, 1}));
}

TEST(Tensor, MisuseErrorsNameShapesDtypesAndDevices) {
  Tensor a = ones({2, 3}), b = ones({4, 5});
  try {
    add(a, b);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("[2, 3]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[4, 5]"), std::string::npos) << e.what();
  }
  try {
    add(a, ones({2, 3}, {DType::kF64}));
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("f32"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("f64"), std::string::npos) << e.what();
  }
}

TEST(Generator, SameSeedSameNumbersAndCountersAdvance) {
  Generator g1(42), g2(42);
  Tensor a = rand({1000}, g1), b = rand({1000}, g2);
  EXPECT_EQ(a.to_vector<float>(), b.to_vector<float>());
  Tensor c = rand({1000}, g1);
  EXPECT_NE(a.to_vector<float>(), c.to_vector<float>());
  auto v = a.to_vector<float>();
  double m = 0;
  for (float x : v) { EXPECT_GE(x, 0.f); EXPECT_LT(x, 1.f); m += x; }
  EXPECT_NEAR(m / v.size(), 0.5, 0.05);
  Tensor n = randn({20000}, g1);
  EXPECT_NEAR(mean(n).item(), 0.0, 0.03);
  EXPECT_NEAR(mean(mul(n, n)).item(), 1.0, 0.05);
}
