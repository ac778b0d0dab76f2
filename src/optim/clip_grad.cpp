// Global-norm gradient clipping: per-gradient sums of squares (ReduceOp::SumSquares) land in one
// buffer per device and accumulation dtype, so the host reads each buffer once (one sync).
#include "mt/optim/clip_grad.h"

#include <algorithm>
#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

double grad_sum_of_squares(const std::vector<Tensor>& params) {
  NoGradGuard no_grad;
  struct Batch {
    Device device;
    DType acc;  // f32, or f64 for f64 gradients
    std::vector<Tensor> rows;
  };
  std::vector<Batch> batches;
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined()) continue;
    MT_CHECK(is_floating(g.dtype()), "clip_grad_norm: gradient must be floating, got ", g.describe());
    DType acc = g.dtype() == DType::F64 ? DType::F64 : DType::F32;
    auto it = std::find_if(batches.begin(), batches.end(),
                           [&](const Batch& b) { return b.device == g.device() && b.acc == acc; });
    if (it == batches.end()) it = batches.insert(batches.end(), Batch{g.device(), acc, {}});
    // Half gradients are widened first: the kernel writes its sum in the input's accumulation dtype.
    it->rows.push_back(g.to(acc).contiguous().reshape({1, g.numel()}));
  }
  double total_sq = 0;
  for (const Batch& b : batches) {
    Tensor sums = Tensor::empty({static_cast<int64_t>(b.rows.size())}, b.acc, b.device);
    for (size_t i = 0; i < b.rows.size(); ++i) {
      Tensor out = sums.narrow(0, static_cast<int64_t>(i), 1);
      if (b.rows[i].numel() == 0)
        fill_(out, 0.0);
      else
        kernels().reduce_rows.get(b.device, "clip_grad_norm")(ReduceOp::SumSquares, b.rows[i], out);
    }
    for (double s : sums.to_vector<double>()) total_sq += s;
  }
  return total_sq;
}

void clip_grads_to_norm(const std::vector<Tensor>& params, double norm, double max_norm) {
  MT_CHECK(max_norm > 0, "clip_grad_norm: max_norm must be > 0, got ", max_norm);
  if (!std::isfinite(norm)) return;
  double coef = max_norm / (norm + 1e-6);
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
