// GradientReducer: buckets in backward order, started from the gradients' ready hooks, waited at the end.
#include "mt/dist/gradient_reducer.h"

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
// polls the earlier requests from each hook (MPI progresses a request only inside MPI calls); on CUDA the
// all-reduce runs on a communication stream after the compute stream's work so far, and finish() makes the
// compute stream wait for it. Only the step's last micro-batch is reduced (arm()), so gradient accumulation
// still sums locally first. Results: the same buckets and collectives as Overlap::kOff, so identical.

GradientReducer::GradientReducer(std::vector<Tensor> params, const Communicator& comm, DType main_grad_reduce,
                                 Overlap overlap, size_t bucket_bytes)
    : params_(std::move(params)), bucket_of_(params_.size()), comm_(comm), overlap_(overlap) {
  MT_CHECK(main_grad_reduce == DType::F32 || main_grad_reduce == DType::BF16,
           "GradientReducer: main gradients reduce in f32 or bf16, got ", dtype_name(main_grad_reduce));
  size_t bytes = 0;
  Device device = Device::cpu();
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    DType grad = grad_dtype_for(p.dtype());
    DType wire = main_grad_reduce == DType::BF16 && is_half(p.dtype()) ? DType::BF16 : grad;
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
  }
}

void GradientReducer::on_ready(size_t param) {
  if (!armed_) return;
  Bucket& mine = buckets_[bucket_of_[param]];
  ++mine.ready;
  for (size_t i = 0; i < next_; ++i) buckets_[i].request.test();  // let MPI progress what is in flight
  while (next_ < buckets_.size() && buckets_[next_].ready == static_cast<int>(buckets_[next_].params.size())) {
    start(buckets_[next_++]);
    ++started_early_;
  }
}

void GradientReducer::start(Bucket& b) {
  NoGradGuard no_grad;
  int64_t numel = 0;
  Device device = Device::cpu();
  for (size_t k : b.params)
    if (params_[k].grad().defined()) {
      numel += params_[k].numel();
      device = params_[k].device();
    }
  b.started = true;
  if (numel == 0) return;
  b.flat = Tensor::empty({numel}, b.wire, device);
  int64_t at = 0;
  for (size_t k : b.params) {
    const Tensor g = params_[k].grad();
    if (!g.defined()) continue;
    b.flat.narrow(0, at, g.numel()).copy_(g.reshape({g.numel()}));
    at += g.numel();
  }
  b.request = comm_.all_reduce_start(b.flat, ReduceKind::kSum);
}

double GradientReducer::finish() {
  armed_ = false;
  if (comm_.size() == 1) return 0;
  while (next_ < buckets_.size()) start(buckets_[next_++]);
  NoGradGuard no_grad;
  double waited = 0;
  for (Bucket& b : buckets_) {
    const auto t0 = std::chrono::steady_clock::now();
    b.request.wait();
    waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!b.flat.defined()) continue;
    // The mean: divided in the buffer when it has the gradients' dtype, else (bf16 on the wire) after the
    // copy back, in f32: one rounding fewer.
    const bool divide_here = b.wire != DType::BF16;
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
    b.flat = Tensor();
    b.request = CommRequest();
  }
  return waited;
}

}  // namespace mt
