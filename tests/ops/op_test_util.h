// Helpers shared by the op tests: f64 leaf construction, element-wise value checks and a
// gradcheck assertion that prints the first failing element.
#pragma once
#include <gtest/gtest.h>

#include <functional>
#include <vector>

#include "mt/autograd/gradcheck.h"
#include "mt/ops/ops.h"

namespace mt::testing {

// An f64 tensor that requires grad.
inline Tensor leaf(const std::vector<double>& values, const Shape& shape) {
  Tensor t = Tensor::from_vector<double>(values, shape);
  t.set_requires_grad(true);
  return t;
}

// Values scale * (1 + i*7 mod n), every third negated: distinct (n not a multiple of 7),
// deterministic and away from zero.
inline std::vector<double> distinct_values(int64_t n, double scale = 0.1) {
  std::vector<double> v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = scale * static_cast<double>(1 + (i * 7) % n) * (i % 3 == 1 ? -1.0 : 1.0);
  return v;
}

inline void expect_values(const Tensor& t, const std::vector<double>& expected, double tol = 1e-12) {
  std::vector<double> got = t.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size()) << t.describe();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], tol) << "element " << i << " of " << t.describe();
}

inline void expect_gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn, const std::vector<Tensor>& inputs,
                             GradcheckOptions options = {}) {
  GradcheckResult r = gradcheck(fn, inputs, options);
  EXPECT_TRUE(r.ok) << r.message << " (max abs error " << r.max_abs_error << ")";
}

}  // namespace mt::testing
