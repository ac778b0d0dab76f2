// gradcheck implementation: one backward for the analytic gradient, two forwards per element.
#include "mt/autograd/gradcheck.h"

#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor>&)>& fn,
                          const std::vector<Tensor>& inputs, GradcheckOptions options) {
  for (const Tensor& t : inputs)
    MT_CHECK(!t.defined() || !is_floating(t.dtype()) || t.dtype() == DType::kF64,
             "gradcheck: floating inputs must be f64, got ", t.describe());
  GradcheckResult result;
  Tensor out = fn(inputs);
  MT_CHECK(out.dtype() == DType::kF64, "gradcheck: output must be f64, got ", out.describe());
  Generator gen(options.seed);
  Tensor w = uniform(out.shape(), 0.5, 1.5, gen, {DType::kF64, out.device()});
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) t.zero_grad();
  sum(mul(out, w)).backward();

  auto project = [&](const std::vector<Tensor>& in) {
    NoGradGuard no_grad;
    return sum(mul(fn(in), w)).item();
  };
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor& x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor analytic = x.grad();
    std::vector<double> ga = analytic.defined() ? analytic.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    Tensor host = x.detach().to(Device::cpu()).contiguous().clone();
    for (int64_t e = 0; e < x.numel(); ++e) {
      double* p = host.data<double>() + e;
      double orig = *p;
      std::vector<Tensor> shifted = inputs;
      *p = orig + options.eps;
      shifted[i] = host.clone().to(x.device()).view(x.shape());
      double plus = project(shifted);
      *p = orig - options.eps;
      shifted[i] = host.clone().to(x.device()).view(x.shape());
      double minus = project(shifted);
      *p = orig;
      double numeric = (plus - minus) / (2 * options.eps);
      double err = std::fabs(numeric - ga[e]);
      result.max_abs_error = std::max(result.max_abs_error, err);
      if (result.ok && err > options.atol + options.rtol * std::fabs(numeric)) {
        result.ok = false;
        result.message = str_cat("input ", i, " element ", e, ": numeric ", numeric, " vs analytic ", ga[e]);
      }
    }
  }
  return result;
}

}  // namespace mt
