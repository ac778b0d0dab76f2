// Elementwise ops: hand-computed values (broadcasting, unary math, where, comparisons, casts,
// strided inputs) and f64 gradchecks of every differentiable one; the shared ones vector.
#include <gtest/gtest.h>

#include <cmath>

#include "op_test_util.h"

using namespace mt;
using mt::testing::expect_gradcheck;
using mt::testing::expect_values;
using mt::testing::leaf;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
}  // namespace

TEST(Elementwise, ArithmeticBroadcastsRowsAndColumns) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor row = f64({10, 20, 30}, {3});
  Tensor col = f64({2, 4}, {2, 1});
  expect_values(add(a, row), {11, 22, 33, 14, 25, 36});
  expect_values(sub(a, row), {-9, -18, -27, -6, -15, -24});
  expect_values(mul(a, row), {10, 40, 90, 40, 100, 180});
  expect_values(div(a, col), {0.5, 1, 1.5, 1, 1.25, 1.5});
  expect_values(add(col, row), {12, 22, 32, 14, 24, 34});  // (2, 1) + (3) -> (2, 3)
  EXPECT_EQ(add(col, row).shape(), Shape({2, 3}));
  expect_values(a + row, {11, 22, 33, 14, 25, 36});
  expect_values(-a, {-1, -2, -3, -4, -5, -6});
}

TEST(Elementwise, PowMaximumMinimum) {
  expect_values(pow(f64({1, 2, 3}, {3}), f64({2, 3, 0.5}, {3})), {1, 8, std::sqrt(3.0)});
  expect_values(pow(f64({1, 2, 3}, {3}), 2.0), {1, 4, 9});
  Tensor a = f64({1, 5, 3, -2}, {2, 2});
  Tensor b = f64({2, 0}, {2});
  expect_values(maximum(a, b), {2, 5, 3, 0});
  expect_values(minimum(a, b), {1, 0, 2, -2});
}

TEST(Elementwise, ScalarOps) {
  Tensor a = f64({1, -2}, {2});
  expect_values(add(a, 1.5), {2.5, -0.5});
  expect_values(mul(a, -2.0), {-2, 4});
  expect_values(neg(a), {-1, 2});
}

TEST(Elementwise, UnaryMath) {
  expect_values(exp(f64({0, 1}, {2})), {1, std::exp(1.0)});
  expect_values(log(f64({1, std::exp(1.0)}, {2})), {0, 1}, 1e-15);
  expect_values(sqrt(f64({4, 2}, {2})), {2, 1.4142135623730951});
  expect_values(rsqrt(f64({4, 0.25}, {2})), {0.5, 2});
  expect_values(tanh(f64({0, 0.5}, {2})), {0, 0.46211715726000974});
  expect_values(relu(f64({-1, 0, 2}, {3})), {0, 0, 2});
  expect_values(gelu(f64({1, -1, 0.5, 0}, {4})), {0.8411919906082768, -0.15880800939172324, 0.34571400982514394, 0});
  expect_values(silu(f64({1, 0}, {2})), {0.7310585786300049, 0});
  expect_values(sigmoid(f64({0, 2}, {2})), {0.5, 0.8807970779778823});
  expect_values(abs(f64({-1.5, 2, 0}, {3})), {1.5, 2, 0});
}

TEST(Elementwise, UnaryMathInHalfTypesRoundsOnce) {
  Tensor x = Tensor::from_vector<float>({0.5f, 1.0f, -1.0f}, {3}, DType::kBF16);
  Tensor y = exp(x);
  EXPECT_EQ(y.dtype(), DType::kBF16);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(y.to_vector<float>()[i], static_cast<float>(bf16(std::exp(x.to_vector<float>()[i]))));
}

TEST(Elementwise, WhereBroadcastsConditionAndValues) {
  Tensor c = Tensor::from_vector<bool>({true, false, true}, {3});
  expect_values(where(c, f64({1, 2, 3}, {3}), f64({9}, {1})), {1, 9, 3});
  Tensor c2 = Tensor::from_vector<bool>({true, false}, {2, 1});
  expect_values(where(c2, f64({1, 2, 3}, {3}), f64({-1}, {1})), {1, 2, 3, -1, -1, -1});
}

TEST(Elementwise, ComparisonsGiveBool) {
  Tensor a = f64({1, 2, 3}, {3});
  Tensor b = f64({2, 2, 2}, {3});
  EXPECT_EQ(eq(a, b).dtype(), DType::kBool);
  EXPECT_EQ(eq(a, b).to_vector<bool>(), (std::vector<bool>{false, true, false}));
  EXPECT_EQ(ne(a, b).to_vector<bool>(), (std::vector<bool>{true, false, true}));
  EXPECT_EQ(lt(a, b).to_vector<bool>(), (std::vector<bool>{true, false, false}));
  EXPECT_EQ(le(a, b).to_vector<bool>(), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(gt(a, b).to_vector<bool>(), (std::vector<bool>{false, false, true}));
  EXPECT_EQ(ge(a, b).to_vector<bool>(), (std::vector<bool>{false, true, true}));
  Tensor ints = Tensor::from_vector<int64_t>({1, 5}, {2});
  EXPECT_EQ(gt(ints, Tensor::from_vector<int64_t>({3}, {1})).to_vector<bool>(), (std::vector<bool>{false, true}));
}

// Note [Shared ones]: views of one vector per dtype and device; a longer request grows it and leaves the
// views handed out before intact.
TEST(Creation, SharedOnesAreViewsOfOneVectorThatGrows) {
  Tensor a = shared_ones(3, {DType::kBF16}), b = shared_ones(2, {DType::kBF16});
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(a.data_ptr(), b.data_ptr());
  EXPECT_EQ(shared_ones(0, {DType::kBF16}).numel(), 0);
  Tensor longer = shared_ones(1000, {DType::kBF16});
  EXPECT_EQ(longer.to_vector<double>(), std::vector<double>(1000, 1.0));
  EXPECT_EQ(shared_ones(5, {DType::kBF16}).data_ptr(), longer.data_ptr());
  EXPECT_EQ(a.to_vector<double>(), (std::vector<double>{1, 1, 1}));
  EXPECT_EQ(shared_ones(2, {DType::kF64}).dtype(), DType::kF64);
  EXPECT_NE(shared_ones(2, {DType::kF64}).data_ptr(), b.data_ptr());
}

TEST(Elementwise, CastConvertsBetweenDtypes) {
  Tensor a = f64({1.7, -2.5, 0}, {3});
  EXPECT_EQ(cast(a, DType::kI64).to_vector<int64_t>(), (std::vector<int64_t>{1, -2, 0}));  // toward zero
  EXPECT_EQ(cast(a, DType::kBool).to_vector<bool>(), (std::vector<bool>{true, true, false}));
  EXPECT_EQ(cast(a, DType::kF32).dtype(), DType::kF32);
  EXPECT_EQ(cast(a, DType::kF32).to_vector<float>(), (std::vector<float>{1.7f, -2.5f, 0.f}));
  EXPECT_EQ(cast(f64({1.00390625}, {1}), DType::kBF16).to_vector<float>()[0], 1.0f);  // nearest even
}

TEST(Elementwise, StridedInputs) {
  Tensor a = arange(0, 6, 1, {DType::kF64}).view({3, 2});
  Tensor t = a.transpose(0, 1);  // (2, 3): [[0, 2, 4], [1, 3, 5]]
  expect_values(add(t, f64({1, 1, 1}, {3})), {1, 3, 5, 2, 4, 6});
  Tensor n = arange(0, 12, 1, {DType::kF64}).view({3, 4}).narrow(1, 1, 2);  // [[1, 2], [5, 6], [9, 10]]
  expect_values(mul(n, n), {1, 4, 25, 36, 81, 100});
  expect_values(exp(t), {1, std::exp(2.0), std::exp(4.0), std::exp(1.0), std::exp(3.0), std::exp(5.0)});
}

TEST(ElementwiseGrad, BinaryOpsWithBroadcasting) {
  Tensor a = leaf({0.5, -1.2, 2.0, 1.5, -0.3, 0.8}, {2, 3});
  Tensor b = leaf({1.3, -0.7, 2.2}, {3});
  Tensor c = leaf({0.9, 1.6}, {2, 1});
  expect_gradcheck([](const std::vector<Tensor>& x) { return add(x[0], x[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& x) { return sub(x[0], x[1]); }, {a, c});
  expect_gradcheck([](const std::vector<Tensor>& x) { return mul(x[0], x[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& x) { return div(x[0], x[1]); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& x) { return maximum(x[0], x[1]); }, {a, c});
  expect_gradcheck([](const std::vector<Tensor>& x) { return minimum(x[0], x[1]); }, {a, b});
  Tensor base = leaf({0.5, 1.2, 2.0}, {3});
  expect_gradcheck([](const std::vector<Tensor>& x) { return pow(x[0], x[1]); }, {base, b});
}

TEST(ElementwiseGrad, ScalarAndUnaryOps) {
  Tensor x = leaf({0.5, -1.2, 2.0, 0.3, -0.4}, {5});
  Tensor pos = leaf({0.5, 1.2, 2.0, 0.3, 3.1}, {5});
  using F = std::function<Tensor(const Tensor&)>;
  for (F f : {F([](const Tensor& t) { return add(t, 1.5); }), F([](const Tensor& t) { return mul(t, -2.5); }),
              F([](const Tensor& t) { return neg(t); }), F([](const Tensor& t) { return exp(t); }),
              F([](const Tensor& t) { return tanh(t); }), F([](const Tensor& t) { return relu(t); }),
              F([](const Tensor& t) { return gelu(t); }), F([](const Tensor& t) { return silu(t); }),
              F([](const Tensor& t) { return sigmoid(t); }), F([](const Tensor& t) { return abs(t); }),
              F([](const Tensor& t) { return pow(t, 3.0); })})
    expect_gradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {x});
  for (F f : {F([](const Tensor& t) { return log(t); }), F([](const Tensor& t) { return sqrt(t); }),
              F([](const Tensor& t) { return rsqrt(t); }), F([](const Tensor& t) { return pow(t, -1.5); })})
    expect_gradcheck([f](const std::vector<Tensor>& in) { return f(in[0]); }, {pos});
}

TEST(ElementwiseGrad, WhereAndCast) {
  Tensor c = Tensor::from_vector<bool>({true, false, true}, {3});
  Tensor a = leaf({0.5, -1.2, 2.0}, {3});
  Tensor b = leaf({0.7}, {1});
  expect_gradcheck([c](const std::vector<Tensor>& x) { return where(c, x[0], x[1]); }, {a, b});
  // Through f32 and back: the derivative is 1; a wide step keeps f32 rounding out of the difference.
  GradcheckOptions wide;
  wide.eps = 1e-2;
  wide.atol = 1e-4;
  expect_gradcheck([](const std::vector<Tensor>& x) { return cast(cast(x[0], DType::kF32), DType::kF64); }, {a}, wide);
}

TEST(ElementwiseGrad, StridedInputs) {
  Tensor a = leaf({0.5, -1.2, 2.0, 1.5, -0.3, 0.8}, {3, 2});
  Tensor b = leaf({1.3, -0.7, 2.2, 0.4, 0.9, -1.1, 0.6, 1.7}, {2, 4});
  expect_gradcheck([](const std::vector<Tensor>& x) { return mul(x[0].transpose(0, 1), x[1].narrow(1, 1, 3)); }, {a, b});
  expect_gradcheck([](const std::vector<Tensor>& x) { return gelu(x[0].transpose(0, 1)); }, {a});
}
