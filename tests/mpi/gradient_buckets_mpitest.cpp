// Bucketed gradient averaging under 2 and 4 ranks: the same result as one all-reduce per gradient for
// mixed shapes and dtypes, buckets split where the next gradient would overflow, a gradient larger
// than a bucket alone in its own, parameters without a gradient skipped; the f32 main gradients of
// bf16 parameters summed in f32 or in bf16.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/core/error.h"
#include "mt/dist/gradient_buckets.h"
#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

// A parameter whose gradient holds rank-dependent values: grad[i] = (rank + 1) * (i + 1) * scale.
Tensor param_with_grad(const Shape& shape, DType dtype, int rank, double scale) {
  Tensor p = zeros(shape, {dtype});
  p.set_requires_grad(true);
  NoGradGuard ng;
  p.set_grad(mul(add(arange(0, shape.numel(), 1, {dtype}), 1.0), (rank + 1) * scale).view(shape));
  return p;
}

}  // namespace

TEST(GradientBuckets, AverageEqualsOneAllReducePerGradient) {
  Communicator w = Communicator::world();
  int r = w.rank();
  std::vector<Tensor> params = {param_with_grad({3, 4}, DType::kF32, r, 1.0), param_with_grad({5}, DType::kF64, r, 0.5),
                                param_with_grad({2, 2, 2}, DType::kF32, r, 2.0), param_with_grad({40}, DType::kF32, r, 1.0),
                                param_with_grad({7}, DType::kF64, r, 3.0)};
  Tensor no_grad = zeros({4});
  no_grad.set_requires_grad(true);
  params.insert(params.begin() + 2, no_grad);
  std::vector<Tensor> expected;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    Tensor e = p.grad().clone();
    w.all_reduce(e, ReduceKind::kAvg);
    expected.push_back(e);
  }
  // 64 bytes per bucket: f32 (3,4) alone (48 B, and 32 B more would overflow), (2,2,2) alone, (40) alone
  // (160 B > 64 B); f64 (5) and (7) apart (40 + 56 B > 64 B). Five collectives in all.
  EXPECT_EQ(all_reduce_gradients(params, w, 64), 5);
  EXPECT_FALSE(no_grad.grad().defined());
  size_t k = 0;
  for (const Tensor& p : params) {
    if (!p.grad().defined()) continue;
    EXPECT_EQ(p.grad().to_vector<double>(), expected[k].to_vector<double>()) << "gradient " << k;
    ++k;
  }
  // Averaged twice more with the default bucket size: one collective per dtype, values unchanged.
  EXPECT_EQ(all_reduce_gradients(params, w), 2);
  k = 0;
  for (const Tensor& p : params)
    if (p.grad().defined()) EXPECT_EQ(p.grad().to_vector<double>(), expected[k++].to_vector<double>());
}

// Note [f32 main gradients]: a bf16 parameter's gradient is f32. Reduced in f32 it is the plain
// average; in bf16 each rank's gradient and each partial sum is rounded to bf16 (relative error at
// most 2^-9 each: positive values, so the sum's relative error stays under ranks * 2^-8) and the result
// is f32 again. An f32 parameter's gradient stays f32 on the wire either way.
TEST(GradientBuckets, MainGradientsOfBf16ParametersReduceInF32OrBf16) {
  Communicator w = Communicator::world();
  const int r = w.rank(), ranks = w.size();
  auto grads = [&](double offset) {  // grad[i] = (rank + 1) * (i + 1) * 0.1 + offset, f32
    return add(mul(add(arange(0, 64, 1, {DType::kF32}), 1.0), (r + 1) * 0.1), offset);
  };
  Tensor half = zeros({64}, {DType::kBF16}), full = zeros({64});
  half.set_requires_grad(true);
  full.set_requires_grad(true);
  Tensor exact_half = grads(1.0 / 3), exact_full = grads(1.0 / 7);
  w.all_reduce(exact_half, ReduceKind::kAvg);
  w.all_reduce(exact_full, ReduceKind::kAvg);
  std::vector<double> want_half = exact_half.to_vector<double>(), want_full = exact_full.to_vector<double>();

  half.set_grad(grads(1.0 / 3));
  full.set_grad(grads(1.0 / 7));
  EXPECT_EQ(all_reduce_gradients({half, full}, w, kDefaultBucketBytes, 0, DType::kF32), 1);  // one f32 bucket
  EXPECT_EQ(half.grad().to_vector<double>(), want_half);
  EXPECT_EQ(full.grad().to_vector<double>(), want_full);

  half.set_grad(grads(1.0 / 3));
  full.set_grad(grads(1.0 / 7));
  EXPECT_EQ(all_reduce_gradients({half, full}, w, kDefaultBucketBytes, 0, DType::kBF16), 2);  // f32, then bf16
  ASSERT_EQ(half.grad().dtype(), DType::kF32);
  EXPECT_EQ(full.grad().to_vector<double>(), want_full);
  std::vector<double> got = half.grad().to_vector<double>();
  int rounded = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_LE(std::abs(got[i] - want_half[i]), ranks * std::ldexp(1.0, -8) * want_half[i]) << "element " << i;
    rounded += got[i] != want_half[i];
  }
  EXPECT_GT(rounded, 0) << "the bf16 reduce should round some sums";

  EXPECT_THROW(all_reduce_gradients({half}, w, kDefaultBucketBytes, 0, DType::kF16), Error);
}
