// Differentiable views and copies (view/reshape/permute/transpose/narrow/select/expand/
// unsqueeze/squeeze/flatten/contiguous/clone/to): f64 gradchecks, and gradients of a narrowed
// view landing in the right place.
#include <gtest/gtest.h>

#include "op_test_util.h"

using namespace mt;
using mt::testing::distinct_values;
using mt::testing::expect_gradcheck;
using mt::testing::expect_values;
using mt::testing::leaf;

TEST(ViewOpsGrad, EveryView) {
  Tensor x = leaf(distinct_values(24), {2, 3, 4});
  using F = std::function<Tensor(const Tensor&)>;
  for (F f : {F([](const Tensor& t) { return t.view({6, 4}); }), F([](const Tensor& t) { return t.reshape({4, -1}); }),
              F([](const Tensor& t) { return t.transpose(0, 2).reshape({24}); }),
              F([](const Tensor& t) { return t.permute({2, 0, 1}); }), F([](const Tensor& t) { return t.narrow(2, 1, 2); }),
              F([](const Tensor& t) { return t.select(1, 2); }), F([](const Tensor& t) { return t.select(0, -1); }),
              F([](const Tensor& t) { return t.narrow(0, 1, 1).squeeze(0); }),
              F([](const Tensor& t) { return t.unsqueeze(1).expand({2, 5, 3, 4}); }),
              F([](const Tensor& t) { return t.flatten(1); }), F([](const Tensor& t) { return t.transpose(1, 2).contiguous(); }),
              F([](const Tensor& t) { return t.clone(); }), F([](const Tensor& t) { return t.to(DType::kF64); })})
    expect_gradcheck([f](const std::vector<Tensor>& in) { return mul(f(in[0]), f(in[0])); }, {x});
}

TEST(ViewOpsGrad, NarrowedGradientLandsInItsRange) {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mul(x.narrow(1, 1, 2), 2.0)).backward();
  expect_values(x.grad(), {0, 2, 2, 0, 2, 2});
}
