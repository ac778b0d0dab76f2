// Global-norm gradient clipping: per-gradient sums of squares (one sum_squares_many kernel call per device
// and dtype) land in one buffer, so the host reads each buffer once (one sync).
#include "mt/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

double grad_sum_of_squares(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  // Gradients grouped by device and dtype, each group one sum_squares_many call (one host read).
  struct Group {
    Device device;
    DType dtype;
    std::vector<Tensor> grads;
  };
  std::vector<Group> groups;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    MT_CHECK(is_floating(g.dtype()), "clip_grad_norm: gradient must be floating, got ", g.describe());
    auto it = std::find_if(groups.begin(), groups.end(),
                           [&](const Group& x) { return x.device == g.device() && x.dtype == g.dtype(); });
    if (it == groups.end()) it = groups.insert(groups.end(), Group{g.device(), g.dtype(), {}});
    it->grads.push_back(g.contiguous());
  }
  double total_sq = 0;
  for (const Group& group : groups) {
    DType acc = group.dtype == DType::kF64 ? DType::kF64 : DType::kF32;
    Tensor sums = Tensor::empty({static_cast<int64_t>(group.grads.size())}, acc, group.device);
    kernels().sum_squares_many.get(group.device, "clip_grad_norm")(group.grads, sums);
    for (double s : sums.to_vector<double>()) total_sq += s;
  }
  return total_sq;
}

double clip_coefficient(double norm, double max_norm) {
  MT_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  if (!std::isfinite(norm)) return 1.0;
  return std::min(1.0, max_norm / (norm + 1e-6));
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
