// Creation ops: constant fills, shared ones, ranges and Philox-based random tensors.
#include <algorithm>
#include <cmath>
#include <mutex>
#include <vector>

#include "mt/core/device_graph.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

void fill_(const Tensor& t, double value) {
  if (t.numel() == 0) return;
  if (t.is_contiguous()) {
    kernels().fill.get(t.device(), "fill_")(t, value);
  } else {
    t.copy_(full({}, value, {t.dtype(), t.device()}));
  }
  t.bump_version();
}

Tensor full(const Shape& shape, double value, TensorOptions o) {
  Tensor t = Tensor::empty(shape, o.dtype, o.device);
  if (t.numel() > 0) kernels().fill.get(o.device, "full")(t, value);
  return t;
}

Tensor zeros(const Shape& shape, TensorOptions o) { return full(shape, 0.0, o); }
Tensor ones(const Shape& shape, TensorOptions o) { return full(shape, 1.0, o); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), {t.dtype(), t.device()}); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), {t.dtype(), t.device()}); }
Tensor scalar_tensor(double value, TensorOptions o) { return full({}, value, o); }

// Note [Shared ones]: every bias gradient is a GEMM with a vector of ones (1^T dY: f32 accumulation, one
// pass over dY); filling a fresh one each time cost 43 small kernels per GPT-2 124M step. So one vector per
// dtype and device is kept, grown to the longest asked for, and handed out as views; nothing may write to
// them. Kept for the process's life (never freed: no tensor outlives the allocators at exit), and the old
// vector too when one grows, since views of it may still be in use. While a graph is being captured the
// fill would not run until the replay, so a vector too short then is made fresh (the warm-up steps before
// a capture have already grown it).
Tensor shared_ones(int64_t n, TensorOptions o) {
  MT_CHECK(n >= 0, "shared_ones: negative length ", n);
  if (capturing(o.device)) return ones({n}, o);
  static std::mutex mutex;
  static auto* vectors = new std::vector<Tensor>();  // every vector made, the longest per key last
  std::lock_guard<std::mutex> lock(mutex);
  for (auto it = vectors->rbegin(); it != vectors->rend(); ++it)
    if (it->dtype() == o.dtype && it->device() == o.device) {
      if (it->numel() >= n) return it->narrow(0, 0, n);
      break;
    }
  vectors->push_back(ones({std::max<int64_t>(n, 1)}, o));
  return vectors->back().narrow(0, 0, n);
}

Tensor arange(double start, double end, double step, TensorOptions o) {
  MT_CHECK(step != 0, "arange: step must be non-zero");
  double n = std::ceil((end - start) / step);
  Tensor t = Tensor::empty({static_cast<int64_t>(std::max(0.0, n))}, o.dtype, o.device);
  if (t.numel() > 0) kernels().arange.get(o.device, "arange")(t, start, step);
  return t;
}

void uniform_(const Tensor& t, double lo, double hi, Generator& gen) {
  MT_CHECK(is_floating(t.dtype()), "uniform_: expected a floating tensor, got ", t.describe());
  MT_CHECK(t.is_contiguous(), "uniform_: expected a contiguous tensor, got strides ", t.strides());
  uint64_t offset = gen.reserve(t.numel());
  if (t.numel() > 0) kernels().uniform.get(t.device(), "uniform_")(t, gen.seed(), offset, gen.device_base(), lo, hi);
  t.bump_version();
}

void normal_(const Tensor& t, double mean, double std, Generator& gen) {
  MT_CHECK(is_floating(t.dtype()), "normal_: expected a floating tensor, got ", t.describe());
  MT_CHECK(t.is_contiguous(), "normal_: expected a contiguous tensor, got strides ", t.strides());
  uint64_t offset = gen.reserve(2 * t.numel());  // Box-Muller takes two uniforms per value
  if (t.numel() > 0) kernels().normal.get(t.device(), "normal_")(t, gen.seed(), offset, gen.device_base(), mean, std);
  t.bump_version();
}

Tensor uniform(const Shape& shape, double lo, double hi, Generator& gen, TensorOptions o) {
  Tensor t = Tensor::empty(shape, o.dtype, o.device);
  uniform_(t, lo, hi, gen);
  return t;
}

Tensor normal(const Shape& shape, double mean, double std, Generator& gen, TensorOptions o) {
  Tensor t = Tensor::empty(shape, o.dtype, o.device);
  normal_(t, mean, std, gen);
  return t;
}

Tensor rand(const Shape& shape, Generator& gen, TensorOptions o) { return uniform(shape, 0.0, 1.0, gen, o); }
Tensor randn(const Shape& shape, Generator& gen, TensorOptions o) { return normal(shape, 0.0, 1.0, gen, o); }

}  // namespace mt
