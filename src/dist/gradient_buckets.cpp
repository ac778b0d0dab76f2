// Bucketed collectives: pack (cat) -> collective -> unpack (copy back through views).
#include "mt/dist/gradient_buckets.h"

#include <algorithm>

#include "mt/autograd/grad_mode.h"
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
                         int mean_over) {
  std::vector<Tensor> grads;
  for (const Tensor& p : params)
    if (p.grad().defined()) grads.push_back(p.grad());
  if (mean_over == 0 || mean_over == comm.size())
    return bucketed_collective(grads, [&](const Tensor& flat) { comm.all_reduce(flat, ReduceKind::kAvg); }, bucket_bytes);
  return bucketed_collective(
      grads,
      [&](const Tensor& flat) {
        comm.all_reduce(flat, ReduceKind::kSum);
        mul_(flat, 1.0 / mean_over);
      },
      bucket_bytes);
}

}  // namespace mt
