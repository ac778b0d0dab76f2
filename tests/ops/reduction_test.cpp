// Reductions: sum/mean over dim sets with keepdim, max/min/argmax (first index on ties),
// sum_to_shape, strided inputs, and f64 gradchecks.
#include <gtest/gtest.h>

#include "op_test_util.h"

using namespace mt;
using mt::testing::expect_gradcheck;
using mt::testing::expect_values;
using mt::testing::leaf;

namespace {
Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
}  // namespace

TEST(Reduction, SumAndMeanOverDims) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  EXPECT_EQ(sum(a).shape(), Shape({}));
  EXPECT_EQ(sum(a).item(), 21);
  expect_values(sum(a, {1}), {6, 15});
  EXPECT_EQ(sum(a, {1}, true).shape(), Shape({2, 1}));
  expect_values(sum(a, {0}), {5, 7, 9});
  expect_values(sum(a, {-1}), {6, 15});
  EXPECT_EQ(mean(a).item(), 3.5);
  expect_values(mean(a, {1}), {2, 5});
  expect_values(mean(a, {0}, true), {2.5, 3.5, 4.5});
  EXPECT_EQ(mean(a, {0}, true).shape(), Shape({1, 3}));
  // x[i, j, k] = 6i + 2j + k; summing i and k leaves 14, 22, 30.
  Tensor c = arange(0, 12, 1, {DType::kF64}).view({2, 3, 2});
  expect_values(sum(c, {0, 2}), {14, 22, 30});
  EXPECT_EQ(sum(c, {0, 2}, true).shape(), Shape({1, 3, 1}));
  EXPECT_EQ(sum(Tensor::from_vector<float>({0.5f, 0.25f}, {2}, DType::kBF16)).item(), 0.75);
}

// Sums over leading dims of contiguous floating tensors take the column-sum path (a GEMM of ones over the
// rows as they lie); integer and strided inputs and other dim sets the row reduction. Every one equals the
// naive sum, in f64 exactly and in bf16 rounded once from the f32 sum.
TEST(Reduction, SumOverLeadingDimsMatchesTheNaiveSumOnEveryPath) {
  const int64_t b = 5, t = 3, d = 4;
  std::vector<double> v(b * t * d);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<double>((i * 37) % 23) - 11.0;
  auto naive = [&](bool over_t) {
    std::vector<double> out(over_t ? d : t * d, 0.0);
    for (int64_t i = 0; i < b; ++i)
      for (int64_t j = 0; j < t; ++j)
        for (int64_t k = 0; k < d; ++k) out[over_t ? k : j * d + k] += v[(i * t + j) * d + k];
    return out;
  };
  for (DType dt : {DType::kF64, DType::kF32, DType::kBF16, DType::kI64}) {
    Tensor x = Tensor::from_vector<double>(v, {b, t, d}, dt);
    Tensor s0 = sum(x, {0});
    EXPECT_EQ(s0.shape(), Shape({t, d}));
    EXPECT_EQ(s0.dtype(), dt);
    expect_values(s0, naive(false));  // small integers: exact in every dtype
    expect_values(sum(x, {0, 1}, true), naive(true));
    EXPECT_EQ(sum(x, {1, 0}, true).shape(), Shape({1, 1, d}));
    expect_values(sum(x.transpose(0, 1), {1}), naive(false));  // strided: the row reduction
  }
  Tensor g = leaf(v, {b, t, d});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0], {0, 1}); }, {g});
}

TEST(Reduction, MaxMinAlongADim) {
  Tensor a = f64({3, 1, 3, -1, -5, 0}, {2, 3});
  expect_values(max(a, 1), {3, 0});
  expect_values(min(a, 1), {1, -5});
  expect_values(max(a, 0), {3, 1, 3});
  EXPECT_EQ(max(a, 1, true).shape(), Shape({2, 1}));
  expect_values(min(a, 0, true), {-1, -5, 0});
}

TEST(Reduction, ArgmaxPicksTheFirstOfTies) {
  Tensor a = f64({1, 7, 7, 2, 2, 0}, {2, 3});
  EXPECT_EQ(argmax(a, 1).dtype(), DType::kI64);
  EXPECT_EQ(argmax(a, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));
  EXPECT_EQ(argmax(a, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 0}));
  EXPECT_EQ(argmax(a, 1, true).shape(), Shape({2, 1}));
}

TEST(Reduction, MaxGradientGoesToTheFirstMaximum) {
  Tensor x = leaf({1, 3, 3, 0}, {4});
  sum(max(x, 0)).backward();
  expect_values(x.grad(), {0, 1, 0, 0});
}

TEST(Reduction, SumToShapeReversesBroadcasting) {
  Tensor g = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  expect_values(sum_to_shape(g, {3}), {5, 7, 9});
  expect_values(sum_to_shape(g, {2, 1}), {6, 15});
  expect_values(sum_to_shape(g, {1, 1}), {21});
}

TEST(Reduction, StridedInputs) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {2, 3}).transpose(0, 1);  // [[1, 4], [2, 5], [3, 6]]
  expect_values(sum(a, {1}), {5, 7, 9});
  expect_values(max(a, 0), {3, 6});
  EXPECT_EQ(argmax(a, 0).to_vector<int64_t>(), (std::vector<int64_t>{2, 2}));
  Tensor n = arange(0, 12, 1, {DType::kF64}).view({3, 4}).narrow(1, 1, 2);  // [[1, 2], [5, 6], [9, 10]]
  expect_values(sum(n, {0}), {15, 18});
}

TEST(ReductionGrad, SumMeanMaxMin) {
  Tensor x = leaf({0.5, -1.2, 2.0, 1.5, -0.3, 0.8, 0.1, 1.1, -0.6, 0.2, 0.4, -2.0}, {2, 3, 2});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0]); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0], {0, 2}); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0], {1}, true); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0], {2}); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return mean(in[0]); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return max(in[0], 1); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return min(in[0], 2, true); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum(in[0].transpose(0, 2), {0}); }, {x});
  expect_gradcheck([](const std::vector<Tensor>& in) { return sum_to_shape(in[0], {3, 1}); }, {x});
}
