// CPU fused optimizer kernels: AdamW and SGD with momentum over many tensors, with the exact
// arithmetic (and operation order) of PyTorch's single-tensor implementations, so golden values match.
// Note [f32 masters]: for bf16/f16 parameters the update runs on the f32 master and is rounded into
// the parameter; a step smaller than half a half-precision ulp moves the master but not the parameter.
#include <cmath>

#include "cpu_kernels.h"
#include "cpu_loops.h"
#include "mt/math/step_control.h"

namespace mt::cpu {

namespace {

constexpr int64_t kGrain = 16384;

// Calls fn.template operator()<P, G>() with the parameter's and the gradient's element types.
template <typename Fn>
void dispatch_param_grad(const OptimTensors& t, const char* op, Fn&& fn) {
  auto half_or_f32 = [&](DType d, const char* what, auto&& inner) {
    switch (d) {
      case DType::kF32: return inner.template operator()<float>();
      case DType::kBF16: return inner.template operator()<bf16>();
      case DType::kF16: return inner.template operator()<f16>();
      default: MT_FAIL(op, ": expected an f32, bf16 or f16 ", what, ", got ", dtype_name(d));
    }
  };
  half_or_f32(t.param.dtype(), "parameter", [&]<typename P>() {
    half_or_f32(t.grad.dtype(), "gradient", [&]<typename G>() { fn.template operator()<P, G>(); });
  });
}

void check_state(const OptimTensors& t, const Tensor& slot, const char* op, const char* what) {
  MT_CHECK(slot.dtype() == DType::kF32 && slot.numel() == t.param.numel() && slot.is_contiguous(), op, ": ", what,
           " must be a contiguous f32 tensor of ", t.param.numel(), " elements, got ", slot.describe());
}

void check_tensors(const OptimTensors& t, const char* op) {
  MT_CHECK(t.param.is_contiguous() && t.grad.is_contiguous() && t.grad.numel() == t.param.numel(), op,
           ": expected contiguous parameter and gradient of equal size, got ", t.param.describe(), " and ",
           t.grad.describe());
  MT_CHECK(t.master.defined() == is_half(t.param.dtype()), op, ": a master copy is needed exactly for bf16/f16 ",
           "parameters; parameter ", t.param.describe(), ", master ", t.master.describe());
  if (t.master.defined()) check_state(t, t.master, op, "master");
}

}  // namespace

void adamw(std::vector<OptimTensors>& tensors, const AdamWHyper& given) {
  AdamWHyper h = given;
  if (const double* c = given.control) {  // Note [Step control]
    if (c[kControlApply] == 0) return;
    h.lr = static_cast<float>(c[kControlLr]);
    h.bias_correction1 = static_cast<float>(c[kControlBias1]);
    h.bias_correction2 = static_cast<float>(c[kControlBias2]);
    h.grad_scale = static_cast<float>(c[kControlGradScale]);
  }
  // PyTorch: param.mul_(1 - lr*wd); exp_avg.lerp_(g, 1-b1); exp_avg_sq.mul_(b2).addcmul_(g, g, 1-b2);
  // denom = sqrt(exp_avg_sq) / sqrt(bc2) + eps; param.addcdiv_(exp_avg, denom, -lr/bc1).
  const float decay = static_cast<float>(1.0 - static_cast<double>(h.lr) * h.weight_decay);
  const float w1 = static_cast<float>(1.0 - static_cast<double>(h.beta1));
  const float w2 = static_cast<float>(1.0 - static_cast<double>(h.beta2));
  const float neg_step = static_cast<float>(-static_cast<double>(h.lr) / h.bias_correction1);
  const float bc2_sqrt = static_cast<float>(std::sqrt(static_cast<double>(h.bias_correction2)));
  for (OptimTensors& t : tensors) {
    check_tensors(t, "adamw");
    check_state(t, t.momentum, "adamw", "exp_avg");
    check_state(t, t.grad_sq_avg, "adamw", "exp_avg_sq");
    dispatch_param_grad(t, "adamw", [&]<typename P, typename G>() {
      P* param = static_cast<P*>(t.param.data_ptr());
      const G* grad = static_cast<const G*>(t.grad.data_ptr());
      float* m = t.momentum.data<float>();
      float* v = t.grad_sq_avg.data<float>();
      float* master = t.master.defined() ? t.master.data<float>() : nullptr;
      parallel_range(t.param.numel(), kGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          float g = static_cast<float>(grad[i]) * h.grad_scale;
          float p = master ? master[i] : static_cast<float>(param[i]);
          p = p * decay;
          m[i] = m[i] + w1 * (g - m[i]);
          v[i] = v[i] * h.beta2 + w2 * g * g;
          float denom = std::sqrt(v[i]) / bc2_sqrt + h.eps;
          p = p + neg_step * m[i] / denom;
          if (master) master[i] = p;
          param[i] = static_cast<P>(p);
        }
      });
    });
  }
}

void sgd(std::vector<OptimTensors>& tensors, const SgdHyper& given) {
  SgdHyper h = given;
  if (const double* c = given.control) {  // Note [Step control]
    if (c[kControlApply] == 0) return;
    h.lr = static_cast<float>(c[kControlLr]);
    h.grad_scale = static_cast<float>(c[kControlGradScale]);
  }
  // PyTorch (dampening 0, no nesterov): d = g + wd*p; buf = buf*momentum + d; p = p - lr*buf.
  // The first step's buf = 0*momentum + d = d, PyTorch's clone of d.
  for (OptimTensors& t : tensors) {
    check_tensors(t, "sgd");
    check_state(t, t.momentum, "sgd", "momentum buffer");
    dispatch_param_grad(t, "sgd", [&]<typename P, typename G>() {
      P* param = static_cast<P*>(t.param.data_ptr());
      const G* grad = static_cast<const G*>(t.grad.data_ptr());
      float* buf = t.momentum.data<float>();
      float* master = t.master.defined() ? t.master.data<float>() : nullptr;
      parallel_range(t.param.numel(), kGrain, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) {
          float p = master ? master[i] : static_cast<float>(param[i]);
          float d = static_cast<float>(grad[i]) * h.grad_scale + h.weight_decay * p;
          buf[i] = buf[i] * h.momentum + d;
          p = p + (-h.lr) * buf[i];
          if (master) master[i] = p;
          param[i] = static_cast<P>(p);
        }
      });
    });
  }
}

void step_control(const Tensor& sum_squares, const Tensor& loss, double max_norm, const Tensor& control) {
  for (const Tensor* t : {&sum_squares, &loss, &control})
    MT_CHECK(t->dtype() == DType::kF64 && t->is_contiguous(), "step_control: expected contiguous f64 tensors, got ",
             t->describe());
  MT_CHECK(sum_squares.numel() == 1 && loss.numel() == 1 && control.numel() == kStepControlSize,
           "step_control: expected one sum of squares, one loss and ", static_cast<int>(kStepControlSize),
           " control values, got ", sum_squares.describe(), ", ", loss.describe(), ", ", control.describe());
  set_step_control(std::sqrt(sum_squares.data<double>()[0]), loss.data<double>()[0], max_norm, control.data<double>());
}

}  // namespace mt::cpu
