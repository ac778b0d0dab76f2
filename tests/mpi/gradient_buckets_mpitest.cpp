// Bucketed gradient averaging under 2 and 4 ranks: the same result as one all-reduce per gradient for
// mixed shapes and dtypes, buckets split where the next gradient would overflow, a gradient larger
// than a bucket alone in its own, parameters without a gradient skipped.
#include <gtest/gtest.h>

#include "mt/autograd/grad_mode.h"
#include "mt/dist/gradient_buckets.h"
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
  std::vector<Tensor> params = {param_with_grad({3, 4}, DType::F32, r, 1.0), param_with_grad({5}, DType::F64, r, 0.5),
                                param_with_grad({2, 2, 2}, DType::F32, r, 2.0), param_with_grad({40}, DType::F32, r, 1.0),
                                param_with_grad({7}, DType::F64, r, 3.0)};
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
