// gradcheck: compares autograd gradients with central finite differences in f64.
// The function's output is projected onto fixed random weights, L = sum(w * f(x)), and dL/dx
// from backward is checked element by element against (L(x+eps) - L(x-eps)) / (2 eps).
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "mt/core/tensor.h"

namespace mt {

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // the first failing input/element, expected vs got
};

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  uint64_t seed = 7;
};

// inputs: f64 tensors; those with requires_grad are checked. fn may return any f64 tensor.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options = {});

}  // namespace mt
