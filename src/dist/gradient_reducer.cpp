// GradientReducer: buckets in backward order, started from the gradients' ready hooks, waited at the end;
// all-reduced, or reduce-scattered to their owners under ZeRO-2.
#include "mt/dist/gradient_reducer.h"

#include <algorithm>
#include <chrono>

#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
#include "mt/ops/ops.h"

namespace mt {

// Note [Overlapped gradient reduction]: without overlap, the data-parallel all-reduce waits for the whole
// backward and then runs exposed. Here the parameters are packed into buckets of about bucket_bytes in
// reverse model order, the order the backward produces their gradients, each bucket of one device and wire
// dtype. Each parameter's accumulator calls a hook once its gradient for this backward is in (after the
// engine summed all its uses, recomputed blocks included); when a bucket's last gradient arrives and every
// earlier bucket has started, the bucket is copied into its buffer and its all-reduce starts. Buckets start
// in the same order on every rank whatever the timing, so the collectives match. On CPU ranks the host
// polls the earlier requests from each hook (MPI progresses a request only inside MPI calls), and takes the
// result of any that completed; on CUDA the all-reduce runs on a communication stream after the compute
// stream's work so far, and finish() makes the compute stream wait for it. Only the step's last micro-batch
// is reduced (arm()), so gradient accumulation still sums locally first. Results: the same buckets and
// collectives as Overlap::kOff, so identical.
//
// Note [Sharded gradients]: ZeRO-2. Each parameter has an owner (ZeroPartition: contiguous runs of whole
// parameters in model order), and a bucket's buffer is packed by owner so that rank r's parameters are
// its r-th chunk; the bucket is then reduce-scattered (chunks of unequal sizes) instead of all-reduced, and
// once its buffer is packed every gradient in it is dropped: after the backward a rank holds the sums of
// its own parameters' gradients and nothing else (plus the buckets still in flight). Gradient accumulation
// cannot sum locally first (that needs the whole gradient between micro-batches), so every micro-batch's
// backward is reduced and the owned sums accumulate on the side (owned_sum_); the last one divides them by
// the rank count and makes them the owned parameters' gradients. The sums are the all-reduce's, added in
// the collective's order, and with accumulation summed over ranks before micro-batches rather than after:
// equal to ZeRO-0/1 to f32 rounding, not bit for bit (tests/cli/train_zero2_test.sh).

GradientReducer::GradientReducer(std::vector<Tensor> params, const Communicator& comm, DType main_grad_reduce,
                                 Overlap overlap, size_t bucket_bytes, std::vector<int> owners)
    : params_(std::move(params)), owner_(std::move(owners)), bucket_of_(params_.size()), comm_(comm),
      overlap_(overlap) {
  MT_CHECK(main_grad_reduce == DType::kF32 || main_grad_reduce == DType::kBF16,
           "GradientReducer: main gradients reduce in f32 or bf16, got ", dtype_name(main_grad_reduce));
  MT_CHECK(owner_.empty() || owner_.size() == params_.size(), "GradientReducer: ", owner_.size(), " owners for ",
           params_.size(), " parameters");
  for (int o : owner_) MT_CHECK(o >= 0 && o < comm_.size(), "GradientReducer: owner ", o, " is not a rank of ", comm_.size());
  size_t bytes = 0;
  Device device = Device::cpu();
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    DType grad = grad_dtype_for(p.dtype());
    DType wire = main_grad_reduce == DType::kBF16 && is_half(p.dtype()) ? DType::kBF16 : grad;
    size_t size = static_cast<size_t>(p.numel()) * dtype_size(grad);
    bool fits = !buckets_.empty() && buckets_.back().wire == wire && device == p.device() &&
                bytes + size <= bucket_bytes;
    if (!fits) {
      buckets_.emplace_back();
      buckets_.back().wire = wire;
      bytes = 0;
      device = p.device();
    }
    buckets_.back().params.push_back(k);
    bucket_of_[k] = buckets_.size() - 1;
    bytes += size;
  }
  if (sharded()) {
    owned_sum_.resize(params_.size());
    for (Bucket& b : buckets_)
      std::stable_sort(b.params.begin(), b.params.end(), [&](size_t a, size_t c) { return owner_[a] < owner_[c]; });
  }
  for (size_t k = 0; k < params_.size(); ++k)
    params_[k].autograd_meta().grad_ready_hook = [this, k] { on_ready(k); };
}

GradientReducer::~GradientReducer() {
  for (const Tensor& p : params_) p.autograd_meta().grad_ready_hook = nullptr;
}

void GradientReducer::arm() {
  armed_ = overlap_ == Overlap::kOn && comm_.size() > 1;
  next_ = 0;
  started_early_ = 0;
  for (Bucket& b : buckets_) {
    b.ready = 0;
    b.started = false;
    b.done = false;
  }
}

void GradientReducer::on_ready(size_t param) {
  if (!armed_) return;
  Bucket& mine = buckets_[bucket_of_[param]];
  ++mine.ready;
  // Let MPI progress what is in flight, and take what completed (its buffers freed early).
  for (size_t i = 0; i < next_; ++i)
    if (!buckets_[i].done && buckets_[i].request.test()) complete(buckets_[i]);
  while (next_ < buckets_.size() && buckets_[next_].ready == static_cast<int>(buckets_[next_].params.size())) {
    if (sharded()) bound_in_flight();
    start(buckets_[next_++]);
    ++started_early_;
  }
}

// Note [Sharded gradients]: a started bucket's buffer is a full copy of its gradients until the request
// completes, and MPI completes CPU requests late (only inside MPI calls, slower under load), so unbounded,
// the buffers in flight could add up to the whole gradient ZeRO-2 means to drop. Before another bucket
// starts, the oldest is completed while kMaxShardedInFlight are in flight: memory bounded by that many
// buckets whatever the timing; the order of the collectives is unchanged.
void GradientReducer::bound_in_flight() {
  constexpr int kMaxShardedInFlight = 2;
  int in_flight = 0;
  for (size_t i = 0; i < next_; ++i) in_flight += buckets_[i].started && !buckets_[i].done;
  for (size_t i = 0; i < next_ && in_flight >= kMaxShardedInFlight; ++i)
    if (buckets_[i].started && !buckets_[i].done) {
      complete(buckets_[i]);
      --in_flight;
    }
}

void GradientReducer::start(Bucket& b) {
  NoGradGuard no_grad;
  int64_t numel = 0;
  Device device = Device::cpu();
  std::vector<int64_t> counts(sharded() ? comm_.size() : 0);  // sharded: elements per owner
  for (size_t k : b.params)
    if (params_[k].grad().defined()) {
      numel += params_[k].numel();
      device = params_[k].device();
      if (sharded()) counts[owner_[k]] += params_[k].numel();
    }
  b.started = true;
  if (numel == 0) {
    b.done = true;
    return;
  }
  b.flat = Tensor::empty({numel}, b.wire, device);
  int64_t at = 0;
  for (size_t k : b.params) {
    const Tensor g = params_[k].grad();
    if (!g.defined()) continue;
    b.flat.narrow(0, at, g.numel()).copy_(g.reshape({g.numel()}));
    at += g.numel();
  }
  if (!sharded()) {
    b.request = comm_.all_reduce_start(b.flat, ReduceKind::kSum);
    return;
  }
  b.mine = Tensor::empty({counts[comm_.rank()]}, b.wire, device);
  b.request = comm_.reduce_scatter_start(b.flat, b.mine, counts, ReduceKind::kSum);
  // The bucket's gradients are in the buffer now: owned or not, none is kept (Note [Sharded gradients]).
  for (size_t k : b.params)
    if (params_[k].grad().defined()) {
      b.sent.push_back(k);
      params_[k].set_grad(Tensor());
    }
}

void GradientReducer::complete(Bucket& b) {
  NoGradGuard no_grad;
  b.done = true;
  b.request.wait();
  if (!b.flat.defined()) return;
  if (sharded()) {
    int64_t at = 0;
    for (size_t k : b.sent) {
      if (owner_[k] != comm_.rank()) continue;
      const Tensor& p = params_[k];
      Tensor part = b.mine.narrow(0, at, p.numel()).view(p.shape());
      at += p.numel();
      const DType grad = grad_dtype_for(p.dtype());
      Tensor& sum = owned_sum_[k];
      if (!sum.defined())
        sum = part.dtype() == grad ? part.clone() : cast(part, grad);
      else
        add_(sum, part.dtype() == grad ? part : cast(part, grad));
    }
    b.sent.clear();
  } else {
    // The mean: divided in the buffer when it has the gradients' dtype, else (bf16 on the wire) after the
    // copy back, in f32: one rounding fewer.
    const bool divide_here = b.wire != DType::kBF16;
    if (divide_here) mul_(b.flat, 1.0 / comm_.size());
    int64_t at = 0;
    for (size_t k : b.params) {
      const Tensor g = params_[k].grad();
      if (!g.defined()) continue;
      Tensor sum = b.flat.narrow(0, at, g.numel());
      at += g.numel();
      g.copy_(sum.view(g.shape()));
      if (!divide_here) mul_(g, 1.0 / comm_.size());
    }
  }
  b.flat = Tensor();
  b.mine = Tensor();
  b.request = CommRequest();
}

double GradientReducer::finish(Backward backward) {
  MT_CHECK(sharded() || backward == Backward::kLast,
           "GradientReducer::finish: replicated gradients are reduced after the step's last backward only");
  armed_ = false;
  if (comm_.size() == 1) return 0;
  while (next_ < buckets_.size()) start(buckets_[next_++]);
  double waited = 0;
  for (Bucket& b : buckets_) {
    if (b.done) continue;
    const auto t0 = std::chrono::steady_clock::now();
    complete(b);
    waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  if (sharded() && backward == Backward::kLast) {
    NoGradGuard no_grad;
    for (size_t k = 0; k < params_.size(); ++k) {
      if (!owned_sum_[k].defined()) continue;
      mul_(owned_sum_[k], 1.0 / comm_.size());
      params_[k].set_grad(owned_sum_[k]);
      owned_sum_[k] = Tensor();
    }
  }
  return waited;
}

}  // namespace mt
