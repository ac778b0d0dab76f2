// Global-norm gradient clipping: per-gradient sums of squares (one sum_squares_many kernel call per device
// and dtype) land in one buffer, which the host reads once, or which is totalled on the device.
#include "mt/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/math/step_control.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

// Gradients grouped by device and dtype, each group one sum_squares_many call.
struct GradGroup {
  Device device;
  DType dtype;
  std::vector<Tensor> grads;
};

std::vector<GradGroup> grad_groups(const std::vector<Tensor>& params) {
  std::vector<GradGroup> groups;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    MT_CHECK(is_floating(g.dtype()), "clip_grad_norm: gradient must be floating, got ", g.describe());
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const GradGroup& x) { return x.device == g.device() && x.dtype == g.dtype(); });
    if (it == groups.end()) it = groups.insert(groups.end(), GradGroup{g.device(), g.dtype(), {}});
    it->grads.push_back(g.contiguous());
  }
  return groups;
}

// The per-gradient sums of squares of one group: f32, or f64 for f64 gradients.
Tensor group_sums(const GradGroup& group) {
  DType acc = group.dtype == DType::kF64 ? DType::kF64 : DType::kF32;
  Tensor sums = Tensor::empty({static_cast<int64_t>(group.grads.size())}, acc, group.device);
  kernels().sum_squares_many.get(group.device, "clip_grad_norm")(group.grads, sums);
  return sums;
}

}  // namespace

double grad_sum_of_squares(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  double total_sq = 0;
  for (const GradGroup& group : grad_groups(params))
    for (double s : group_sums(group).to_vector<double>()) total_sq += s;  // one host read per group
  return total_sq;
}

Tensor grad_sum_of_squares_on(const std::vector<Tensor>& params, Device device) {
  NoGradGuard no_grad;
  Tensor total = zeros({1}, {DType::kF64, device});
  for (const GradGroup& group : grad_groups(params)) {
    MT_CHECK(group.device == device, "grad_sum_of_squares_on: a gradient is on ", group.device, ", not ", device);
    add_(total, sum(cast(group_sums(group), DType::kF64)).reshape({1}));
  }
  return total;
}

double clip_coefficient(double norm, double max_norm) {
  MT_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  return clip_scale(norm, max_norm);
}

void clip_grads_to_norm(const std::vector<Tensor>& params, double norm, double max_norm) {
  double coef = clip_coefficient(norm, max_norm);
  if (coef >= 1.0) return;
  NoGradGuard no_grad;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    if (g.is_contiguous())
      mul_(g, coef);
    else
      g.copy_(mul(g, coef));
  }
}

double clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  MT_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  double norm = std::sqrt(grad_sum_of_squares(params));
  clip_grads_to_norm(params, norm, max_norm);
  return norm;
}

}  // namespace mt
