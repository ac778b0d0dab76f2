// Bucketed gradient averaging: pack (cat) -> all_reduce -> unpack (copy back through views).
#include "mt/dist/gradient_buckets.h"

#include <algorithm>

#include "mt/autograd/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

// Averages `grads` (same device and dtype) with one collective: in place when there is one contiguous
// gradient, else through a flat buffer.
void reduce_bucket(const std::vector<Tensor>& grads, const Communicator& comm) {
  if (grads.size() == 1 && grads[0].is_contiguous()) {
    comm.all_reduce(grads[0], ReduceKind::kAvg);
    return;
  }
  std::vector<Tensor> flat;
  flat.reserve(grads.size());
  for (const Tensor& g : grads) flat.push_back(g.reshape({-1}));
  Tensor buffer = cat(flat);  // (sum of numels)
  comm.all_reduce(buffer, ReduceKind::kAvg);
  int64_t offset = 0;
  for (const Tensor& g : grads) {
    g.copy_(buffer.narrow(0, offset, g.numel()).view(g.shape()));
    offset += g.numel();
  }
}

}  // namespace

int all_reduce_gradients(const std::vector<Tensor>& params, const Communicator& comm, size_t bucket_bytes) {
  NoGradGuard ng;
  int collectives = 0;
  // Open buckets by (device, dtype), filled in parameter order and sent when the next one would overflow.
  struct Open {
    Device device;
    DType dtype;
    std::vector<Tensor> grads;
    size_t bytes = 0;
  };
  std::vector<Open> open;
  auto flush = [&](Open& b) {
    if (b.grads.empty()) return;
    reduce_bucket(b.grads, comm);
    ++collectives;
    b.grads.clear();
    b.bytes = 0;
  };
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (!g.defined() || g.numel() == 0) continue;
    auto it = std::find_if(open.begin(), open.end(),
                           [&](const Open& b) { return b.device == g.device() && b.dtype == g.dtype(); });
    if (it == open.end()) {
      open.push_back({g.device(), g.dtype(), {}, 0});
      it = open.end() - 1;
    }
    if (it->bytes > 0 && it->bytes + g.nbytes() > bucket_bytes) flush(*it);
    it->grads.push_back(g);
    it->bytes += g.nbytes();
  }
  for (Open& b : open) flush(b);
  return collectives;
}

}  // namespace mt
