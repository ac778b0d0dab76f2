// MoE ops: input checks, output allocation, dispatch to the device's moe_* kernels, and the
// backward of the row moves (permute's is unpermute without weights; unpermute's is a weighted
// permute plus one dot product per choice for the weight).
#include "mt/ops/moe_ops.h"

#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

// The dtype the row moves take weights in and accumulate in.
DType weight_dtype(DType data) { return data == DType::kF64 ? DType::kF64 : DType::kF32; }

void check_index_pair(const char* op, const Tensor& expert, const Tensor& slot) {
  MT_CHECK(expert.dim() == 2 && expert.dtype() == DType::kI64, op, ": expected expert (S, k) i64, got ", expert.describe());
  MT_CHECK(slot.shape() == expert.shape() && slot.dtype() == DType::kI64, op, ": expected slot ", expert.shape(),
           " i64 like expert, got ", slot.describe());
  check_same_device(op, expert, slot);
}

void check_map(const char* op, const MoeRowMap& map) {
  check_index_pair(op, map.expert, map.slot);
  MT_CHECK(map.capacity >= 1, op, ": expected a capacity >= 1, got ", map.capacity);
  MT_CHECK(map.buffer_choice.dim() == 1 && map.buffer_choice.dtype() == DType::kI64 &&
               map.buffer_choice.numel() % map.capacity == 0,
           op, ": expected buffer_choice (E * ", map.capacity, ") i64, got ", map.buffer_choice.describe());
  check_same_device(op, map.expert, map.buffer_choice);
}

// The kernels on plain (non-recording) tensors.
Tensor permute_rows(const Tensor& x, const MoeRowMap& map, const Tensor& weight) {
  Tensor out = Tensor::empty({map.buffer_choice.numel(), x.size(1)}, x.dtype(), x.device());
  if (out.numel() > 0)
    kernels().moe_permute.get(x.device(), "moe_permute")(x.contiguous(), map.buffer_choice.contiguous(),
                                                          map.expert.size(1), weight, out);
  return out;
}

Tensor unpermute_rows(const Tensor& y, const MoeRowMap& map, const Tensor& weight) {
  Tensor out = Tensor::empty({map.expert.size(0), y.size(1)}, y.dtype(), y.device());
  if (out.numel() > 0)
    kernels().moe_unpermute.get(y.device(), "moe_unpermute")(y.contiguous(), map.expert.contiguous(),
                                                              map.slot.contiguous(), map.capacity, weight, out);
  return out;
}

}  // namespace

MoeRouting moe_route(const Tensor& logits, const Tensor& noise, int64_t top_k, int64_t capacity) {
  MT_CHECK(logits.dim() == 2 && (logits.dtype() == DType::kF32 || logits.dtype() == DType::kF64),
           "moe_route: expected logits (tokens, experts) f32 or f64, got ", logits.describe());
  const int64_t tokens = logits.size(0), experts = logits.size(1);
  MT_CHECK(tokens >= 1 && experts >= 1, "moe_route: expected at least one token and one expert, got ", logits.describe());
  MT_CHECK(top_k >= 1 && top_k <= experts, "moe_route: top_k must be in [1, ", experts, "], got ", top_k);
  MT_CHECK(capacity >= 0, "moe_route: capacity must be >= 0, got ", capacity);
  if (noise.defined()) {
    check_same_shape("moe_route (noise)", logits, noise);
    check_same_dtype("moe_route (noise)", logits, noise);
    check_same_device("moe_route (noise)", logits, noise);
  }
  Device device = logits.device();
  DType dtype = logits.dtype();
  MoeRouting r;
  r.expert = Tensor::empty({tokens, top_k}, DType::kI64, device);
  r.slot = Tensor::empty({tokens, top_k}, DType::kI64, device);
  r.weight = Tensor::empty({tokens, top_k}, dtype, device);
  r.counts = Tensor::empty({2, experts}, DType::kI64, device);
  r.lse = Tensor::empty({tokens}, dtype, device);
  r.stats = Tensor::empty({2 * experts + 2}, dtype, device);
  kernels().moe_route.get(device, "moe_route")(logits.detach().contiguous(),
                                              noise.defined() ? noise.detach().contiguous() : Tensor(), capacity,
                                              r.expert, r.slot, r.weight, r.counts, r.lse, r.stats);
  return r;
}

MoeSelection moe_select(const Tensor& expert, const Tensor& priority, int64_t capacity) {
  MT_CHECK(expert.dim() == 2 && expert.size(1) == 1 && expert.dtype() == DType::kI64,
           "moe_select: expected top-1 choices expert (S, 1) i64, got ", expert.describe());
  MT_CHECK(priority.dim() == 2 && priority.size(0) == expert.size(0) && priority.dtype() == DType::kF32,
           "moe_select: expected priority (", expert.size(0), ", E) f32, got ", priority.describe());
  MT_CHECK(capacity >= 1, "moe_select: expected a capacity >= 1, got ", capacity);
  check_same_device("moe_select", expert, priority);
  MoeSelection r;
  r.slot = Tensor::empty(expert.shape(), DType::kI64, expert.device());
  r.kept = Tensor::empty({priority.size(1)}, DType::kI64, expert.device());
  kernels().moe_select.get(expert.device(), "moe_select")(expert.contiguous(), priority.detach().contiguous(), capacity,
                                                          r.slot, r.kept);
  return r;
}

Tensor moe_buffer_map(const Tensor& expert, const Tensor& slot, int64_t experts, int64_t capacity) {
  check_index_pair("moe_buffer_map", expert, slot);
  MT_CHECK(experts >= 1 && capacity >= 1, "moe_buffer_map: expected experts and capacity >= 1, got ", experts, " and ",
           capacity);
  Tensor out = Tensor::empty({experts * capacity}, DType::kI64, expert.device());
  kernels().moe_buffer_map.get(expert.device(), "moe_buffer_map")(expert.contiguous(), slot.contiguous(), capacity, out);
  return out;
}

Tensor moe_permute(const Tensor& x, const MoeRowMap& map) {
  check_map("moe_permute", map);
  MT_CHECK(x.dim() == 2 && x.size(0) == map.expert.size(0) && is_floating(x.dtype()), "moe_permute: expected x (",
           map.expert.size(0), ", d) floating, got ", x.describe());
  check_same_device("moe_permute", x, map.expert);
  Tensor out = permute_rows(x.detach(), map, Tensor());
  record_function("MoePermuteBackward", {x}, {out}, [map](const std::vector<Tensor>& g) {
    OpProfiler::Scope dispatch(OpCategory::kMoeDispatch);  // an unpermute, but the dispatch's time
    return std::vector<Tensor>{unpermute_rows(g[0], map, Tensor())};
  });
  return out;
}

Tensor moe_unpermute(const Tensor& y, const MoeRowMap& map, const Tensor& weight) {
  check_map("moe_unpermute", map);
  MT_CHECK(y.dim() == 2 && y.size(0) == map.buffer_choice.numel() && is_floating(y.dtype()),
           "moe_unpermute: expected y (", map.buffer_choice.numel(), ", d) floating, got ", y.describe());
  MT_CHECK(weight.shape() == map.expert.shape() && weight.dtype() == weight_dtype(y.dtype()),
           "moe_unpermute: expected weight ", map.expert.shape(), " ", dtype_name(weight_dtype(y.dtype())), " for ",
           y.describe(), ", got ", weight.describe());
  check_same_device("moe_unpermute", y, map.expert);
  check_same_device("moe_unpermute", y, weight);
  Tensor w = weight.detach().contiguous();
  Tensor out = unpermute_rows(y.detach(), map, w);
  SavedTensor saved_y(y, "moe_unpermute input"), saved_w(w, "moe_unpermute weight");
  const bool weight_grad = weight.requires_grad() || weight.grad_fn() != nullptr;
  record_function("MoeUnpermuteBackward", {y, weight}, {out}, [map, saved_y, saved_w, weight_grad](const std::vector<Tensor>& g) {
    OpProfiler::Scope combine(OpCategory::kMoeCombine);  // a permute, but the combine's time
    Tensor grad = g[0].contiguous();
    const Tensor& yv = saved_y.get();
    Tensor grad_y = permute_rows(grad, map, saved_w.get());
    Tensor grad_w;
    if (weight_grad) {
      grad_w = Tensor::empty(map.expert.shape(), weight_dtype(yv.dtype()), yv.device());
      if (grad_w.numel() > 0)
        kernels().moe_unpermute_weight_grad.get(yv.device(), "moe_unpermute backward")(
            grad, yv.detach().contiguous(), map.expert.contiguous(), map.slot.contiguous(), map.capacity, grad_w);
    }
    return std::vector<Tensor>{grad_y, grad_w};
  });
  return out;
}

}  // namespace mt
