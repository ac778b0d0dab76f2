// Bucketed collectives: pack (cat) -> collective -> unpack (copy back through views).
#include "mt/dist/gradient_buckets.h"

#include <algorithm>

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

// One collective over `ts` (same device and dtype): in place when there is one contiguous tensor, else
// through a flat buffer.
void run_bucket(const std::vector<Tensor>& ts, const std::function<void(const Tensor&)>& collective) {
  if (ts.size() == 1 && ts[0].is_contiguous()) {
    collective(ts[0]);
    return;
  }
  std::vector<Tensor> flat;
  flat.reserve(ts.size());
  for (const Tensor& t : ts) flat.push_back(t.reshape({-1}));
  Tensor buffer = cat(flat);  // (sum of numels)
  collective(buffer);
  int64_t offset = 0;
  for (const Tensor& t : ts) {
    t.copy_(buffer.narrow(0, offset, t.numel()).view(t.shape()));
    offset += t.numel();
  }
}

}  // namespace

int bucketed_collective(const std::vector<Tensor>& tensors, const std::function<void(const Tensor& flat)>& collective,
                        size_t bucket_bytes) {
  NoGradGuard ng;
  int collectives = 0;
  // Open buckets by (device, dtype), filled in order and sent when the next tensor would overflow.
  struct Open {
    Device device;
    DType dtype;
    std::vector<Tensor> ts;
    size_t bytes = 0;
  };
  std::vector<Open> open;
  auto flush = [&](Open& b) {
    if (b.ts.empty()) return;
    run_bucket(b.ts, collective);
    ++collectives;
    b.ts.clear();
    b.bytes = 0;
  };
  for (const Tensor& t : tensors) {
    if (!t.defined() || t.numel() == 0) continue;
    auto it = std::find_if(open.begin(), open.end(),
                           [&](const Open& b) { return b.device == t.device() && b.dtype == t.dtype(); });
    if (it == open.end()) {
      open.push_back({t.device(), t.dtype(), {}, 0});
      it = open.end() - 1;
    }
    if (it->bytes > 0 && it->bytes + t.nbytes() > bucket_bytes) flush(*it);
    it->ts.push_back(t);
    it->bytes += t.nbytes();
  }
  for (Open& b : open) flush(b);
  return collectives;
}

int all_reduce_gradients(const std::vector<Tensor>& params, const Communicator& comm, size_t bucket_bytes,
                         int mean_over, DType main_grad_reduce) {
  MT_CHECK(main_grad_reduce == DType::kF32 || main_grad_reduce == DType::kBF16,
           "all_reduce_gradients: main gradients reduce in f32 or bf16, got ", dtype_name(main_grad_reduce));
  // Gradients reduced in their own dtype, and f32 main gradients of half parameters sent as bf16.
  std::vector<Tensor> grads, narrowed;
  for (const Tensor& p : params) {
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    bool narrow = main_grad_reduce == DType::kBF16 && is_half(p.dtype()) && g.dtype() == DType::kF32;
    (narrow ? narrowed : grads).push_back(g);
  }
  const int n = mean_over == 0 ? comm.size() : mean_over;
  auto average = [&](const Tensor& flat) {
    if (n == comm.size()) {
      comm.all_reduce(flat, ReduceKind::kAvg);
    } else {
      comm.all_reduce(flat, ReduceKind::kSum);
      mul_(flat, 1.0 / n);
    }
  };
  int collectives = bucketed_collective(grads, average, bucket_bytes);
  // The sum in bf16 (half the bytes on the wire), divided back in f32: one rounding fewer than a bf16 average.
  collectives += bucketed_collective(
      narrowed,
      [&](const Tensor& flat) {
        Tensor wire = cast(flat, DType::kBF16);
        comm.all_reduce(wire, ReduceKind::kSum);
        flat.copy_(wire);
        mul_(flat, 1.0 / n);
      },
      bucket_bytes);
  return collectives;
}

}  // namespace mt
