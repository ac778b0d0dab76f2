// CUDA neural-network kernels (contracts in mt/ops/kernel_list.h): unpack tensors, check what the
// launchers rely on, and call the kernels/ launchers on the device's current stream. bf16 / f16 causal
// attention tries cuDNN's fused SDPA first (cudnn_attention.h, switch in mt/ops/attention_backend.h).
#include <algorithm>
#include <initializer_list>
#include <cstdint>
#include <type_traits>

#include "attention.h"
#include "cross_entropy.h"
#include "cuda_launch.h"
#include "cuda_kernels.h"
#include "cudnn_attention.h"
#include "distillation.h"
#include "dropout.h"
#include "flash_attention.h"
#include "layernorm.h"
#include "mt/ops/contiguous_run.h"
#include "softmax.h"

namespace mt::cuda {

namespace {

int64_t last_dim(const Tensor& t) { return t.dim() == 0 ? 1 : t.size(-1); }
int64_t leading_rows(const Tensor& t) { return t.dim() == 0 ? 1 : t.numel() / std::max<int64_t>(last_dim(t), 1); }

void check_contiguous(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    if (t->defined()) MT_CHECK(t->is_contiguous(), op, ": expected a contiguous tensor, got strides ", t->strides());
}

// Whether attention on these (B, H, T, D) tensors takes the tensor-core kernels (flash_attention.h):
// bf16 or f16, a head dim and scale they handle, every base address 16-byte aligned.
bool use_flash_attention(const Tensor& q, double scale, std::initializer_list<const Tensor*> ts) {
  if ((q.dtype() != DType::kBF16 && q.dtype() != DType::kF16) || !gpu::flash_attention_fits(q.size(3), scale))
    return false;
  for (const Tensor* t : ts)
    if (reinterpret_cast<uintptr_t>(t->data_ptr()) % 16 != 0) return false;
  return true;
}

gpu::SoftmaxKind gpu_softmax_kind(SoftmaxKind kind) {
  return kind == SoftmaxKind::kLogSoftmax ? gpu::SoftmaxKind::kLogSoftmax : gpu::SoftmaxKind::kSoftmax;
}

}  // namespace

void softmax(const Tensor& in, const Tensor& out, SoftmaxKind kind) {
  check_contiguous("softmax", {&in, &out});
  cudaStream_t s = stream_for(in);
  dispatch_device_floating(in.dtype(), "softmax", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::softmax_forward<T>(ptr<T>(in), ptr<T>(out), leading_rows(in), last_dim(in),
                                              gpu_softmax_kind(kind), s));
  });
}

void softmax_backward(const Tensor& grad_out, const Tensor& y, const Tensor& grad_in, SoftmaxKind kind) {
  check_contiguous("softmax_backward", {&grad_out, &y, &grad_in});
  cudaStream_t s = stream_for(y);
  dispatch_device_floating(y.dtype(), "softmax_backward", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::softmax_backward<T>(
        ptr<T>(grad_out), ptr<T>(y), ptr<T>(grad_in), leading_rows(y), last_dim(y),
        gpu_softmax_kind(kind), s));
  });
}

// Calls fn.template operator()<T, S>() with the CUDA type of `x` and of its per-row statistics (layer-norm
// mean/rstd, logsumexp, losses): f32, or f64 with f64 input.
template <typename Fn>
void dispatch_with_stats(DType x, DType stats, const char* op, Fn&& fn) {
  dispatch_device_floating(x, op, [&]<typename T>() {
    if (stats == DType::kF32) {
      fn.template operator()<T, float>();
    } else {
      MT_CHECK(stats == DType::kF64 && x == DType::kF64, op, ": statistics must be f32 (or f64 with f64 input), got ",
               dtype_name(stats), " with ", dtype_name(x), " input");
      fn.template operator()<double, double>();
    }
  });
}

void layer_norm_forward(const Tensor& x, const Tensor& w, const Tensor& b, double eps, const Tensor& y,
                        const Tensor& mean, const Tensor& rstd) {
  check_contiguous("layer_norm", {&x, &w, &b, &y, &mean, &rstd});
  MT_CHECK(w.dtype() == x.dtype() && (!b.defined() || b.dtype() == x.dtype()),
           "layer_norm (cuda): weight and bias must have the input's dtype ", x.dtype(), ", got ", w.dtype());
  cudaStream_t s = stream_for(x);
  dispatch_with_stats(x.dtype(), mean.dtype(), "layer_norm", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::layernorm_forward<T, S>(ptr<T>(y), ptr<S>(mean), ptr<S>(rstd), ptr<T>(x), ptr<T>(w),
                                                   ptr<T>(b), leading_rows(x), last_dim(x), eps, s)));
  });
}

namespace {

// The dw/db partial sums the layer-norm backward launchers need, for input x (rows, cols): f32, f64 for f64.
Tensor layer_norm_partials(const Tensor& x, int64_t rows, int64_t cols) {
  return Tensor::empty({gpu::layernorm_backward_partial_elems(rows, cols)},
                       x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32, x.device());
}

// Runs fn<G>() with G the device type of dw and db: T, or float for the f32 gradients of half weights.
template <typename T, typename Fn>
void with_norm_grad_type(const Tensor& x, const Tensor& dw, const Tensor& db, const char* op, Fn&& fn) {
  MT_CHECK(!db.defined() || db.dtype() == dw.dtype(), op, " (cuda): db must have dw's dtype, got ", db.describe());
  if (dw.dtype() == x.dtype()) {
    fn.template operator()<T>();
    return;
  }
  MT_CHECK(is_half(x.dtype()) && dw.dtype() == DType::kF32, op,
           " (cuda): dw must be in the input's dtype or f32 for half inputs, got ", dw.describe());
  if constexpr (!std::is_same_v<T, float> && !std::is_same_v<T, double>) fn.template operator()<float>();
}

}  // namespace

void layer_norm_backward(const Tensor& dy, const Tensor& x, const Tensor& w, const Tensor& mean, const Tensor& rstd,
                         const Tensor& dx, const Tensor& dw, const Tensor& db) {
  check_contiguous("layer_norm_backward", {&dy, &x, &w, &mean, &rstd, &dx, &dw, &db});
  MT_CHECK(w.dtype() == x.dtype(), "layer_norm_backward (cuda): weight must have the input's dtype ", x.dtype(),
           ", got ", w.dtype());
  cudaStream_t s = stream_for(x);
  int64_t rows = leading_rows(x), cols = last_dim(x);
  Tensor partial = layer_norm_partials(x, rows, cols);
  dispatch_with_stats(x.dtype(), mean.dtype(), "layer_norm_backward", [&]<typename T, typename S>() {
    with_norm_grad_type<T>(x, dw, db, "layer_norm_backward", [&]<typename G>() {
      MT_CUDA_CHECK((gpu::layernorm_backward<T, S, G>(ptr<T>(dx), ptr<G>(dw), ptr<G>(db), ptr<T>(dy), ptr<T>(x),
                                                         ptr<T>(w), ptr<S>(mean), ptr<S>(rstd), rows, cols,
                                                         partial.data_ptr(), s)));
    });
  });
}

void add_layer_norm_forward(const Tensor& x, const Tensor& r, const Tensor& w, const Tensor& b, double eps,
                            const Tensor& h, const Tensor& y, const Tensor& mean, const Tensor& rstd) {
  check_contiguous("add_layer_norm", {&x, &r, &w, &b, &h, &y, &mean, &rstd});
  MT_CHECK(r.dtype() == x.dtype() && w.dtype() == x.dtype() && (!b.defined() || b.dtype() == x.dtype()),
           "add_layer_norm (cuda): residual, weight and bias must have the input's dtype ", x.dtype(), ", got ",
           r.dtype(), ", ", w.dtype());
  cudaStream_t s = stream_for(x);
  dispatch_with_stats(x.dtype(), mean.dtype(), "add_layer_norm", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::add_layernorm_forward<T, S>(ptr<T>(h), ptr<T>(y), ptr<S>(mean), ptr<S>(rstd), ptr<T>(x),
                                                       ptr<T>(r), ptr<T>(w), ptr<T>(b), leading_rows(x), last_dim(x),
                                                       eps, s)));
  });
}

void add_layer_norm_backward(const Tensor& dy, const Tensor& dh, const Tensor& h, const Tensor& w, const Tensor& mean,
                             const Tensor& rstd, const Tensor& dx, const Tensor& dw, const Tensor& db) {
  check_contiguous("add_layer_norm_backward", {&dy, &dh, &h, &w, &mean, &rstd, &dx, &dw, &db});
  MT_CHECK(w.dtype() == h.dtype() && dh.dtype() == h.dtype(),
           "add_layer_norm_backward (cuda): weight and dh must have the input's dtype ", h.dtype(), ", got ",
           w.dtype(), ", ", dh.dtype());
  cudaStream_t s = stream_for(h);
  int64_t rows = leading_rows(h), cols = last_dim(h);
  Tensor partial = layer_norm_partials(h, rows, cols);
  dispatch_with_stats(h.dtype(), mean.dtype(), "add_layer_norm_backward", [&]<typename T, typename S>() {
    with_norm_grad_type<T>(h, dw, db, "add_layer_norm_backward", [&]<typename G>() {
      MT_CUDA_CHECK((gpu::add_layernorm_backward<T, S, G>(ptr<T>(dx), ptr<G>(dw), ptr<G>(db), ptr<T>(dy),
                                                             ptr<T>(dh), ptr<T>(h), ptr<T>(w), ptr<S>(mean),
                                                             ptr<S>(rstd), rows, cols, partial.data_ptr(), s)));
    });
  });
}

void cross_entropy_forward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& losses,
                           const Tensor& lse) {
  check_contiguous("cross_entropy", {&logits, &targets, &losses, &lse});
  MT_CHECK(targets.dtype() == DType::kI64, "cross_entropy (cuda): targets must be i64, got ", targets.dtype());
  MT_CHECK(losses.dtype() == lse.dtype(), "cross_entropy (cuda): losses and lse must share a dtype, got ",
           losses.dtype(), " and ", lse.dtype());
  cudaStream_t s = stream_for(logits);
  dispatch_with_stats(logits.dtype(), lse.dtype(), "cross_entropy", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::cross_entropy_forward<T, S>(ptr<T>(logits), targets.data<int64_t>(), ignore_index,
                                                         ptr<S>(losses), ptr<S>(lse), logits.size(0), logits.size(1),
                                                         s)));
  });
}

void cross_entropy_backward(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& lse,
                            const Tensor& grad_losses, const Tensor& dlogits) {
  check_contiguous("cross_entropy_backward", {&logits, &targets, &lse, &grad_losses, &dlogits});
  MT_CHECK(targets.dtype() == DType::kI64, "cross_entropy_backward (cuda): targets must be i64, got ", targets.dtype());
  MT_CHECK(grad_losses.dtype() == lse.dtype(), "cross_entropy_backward (cuda): grad_losses and lse must share a dtype, got ",
           grad_losses.dtype(), " and ", lse.dtype());
  cudaStream_t s = stream_for(logits);
  dispatch_with_stats(logits.dtype(), lse.dtype(), "cross_entropy_backward", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::cross_entropy_backward<T, S>(ptr<T>(logits), targets.data<int64_t>(), ignore_index,
                                                          ptr<S>(lse), ptr<S>(grad_losses), ptr<T>(dlogits),
                                                          logits.size(0), logits.size(1), s)));
  });
}

void cross_entropy_with_grad(const Tensor& logits, const Tensor& targets, int64_t ignore_index, const Tensor& losses) {
  check_contiguous("cross_entropy_with_grad", {&logits, &targets, &losses});
  MT_CHECK(targets.dtype() == DType::kI64, "cross_entropy_with_grad (cuda): targets must be i64, got ", targets.dtype());
  Tensor lse = Tensor::empty({logits.size(0)}, losses.dtype(), logits.device());  // (N): the kernel's scratch
  cudaStream_t s = stream_for(logits);
  dispatch_with_stats(logits.dtype(), losses.dtype(), "cross_entropy_with_grad", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::cross_entropy_with_grad<T, S>(ptr<T>(logits), targets.data<int64_t>(), ignore_index,
                                                           ptr<S>(losses), ptr<S>(lse), logits.size(0),
                                                           logits.size(1), s)));
  });
}

void distillation_forward(const Tensor& student, const Tensor& teacher, double inv_temperature, const Tensor& kl,
                          const Tensor& lse_student, const Tensor& lse_teacher) {
  check_contiguous("distillation_loss", {&student, &teacher, &kl, &lse_student, &lse_teacher});
  MT_CHECK(teacher.dtype() == student.dtype() && lse_student.dtype() == kl.dtype() && lse_teacher.dtype() == kl.dtype(),
           "distillation_loss (cuda): teacher ", teacher.dtype(), " must match student ", student.dtype(),
           ", and both lse ", lse_student.dtype(), "/", lse_teacher.dtype(), " the kl's ", kl.dtype());
  cudaStream_t s = stream_for(student);
  dispatch_with_stats(student.dtype(), kl.dtype(), "distillation_loss", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::distillation_forward<T, S>(ptr<T>(student), ptr<T>(teacher), inv_temperature, ptr<S>(kl),
                                                        ptr<S>(lse_student), ptr<S>(lse_teacher), student.size(0),
                                                        student.size(1), s)));
  });
}

void distillation_backward(const Tensor& student, const Tensor& teacher, double inv_temperature,
                           const Tensor& lse_student, const Tensor& lse_teacher, const Tensor& grad_kl,
                           const Tensor& dstudent) {
  check_contiguous("distillation_loss backward", {&student, &teacher, &lse_student, &lse_teacher, &grad_kl, &dstudent});
  MT_CHECK(teacher.dtype() == student.dtype() && lse_teacher.dtype() == lse_student.dtype() &&
               grad_kl.dtype() == lse_student.dtype(),
           "distillation_loss backward (cuda): teacher ", teacher.dtype(), " must match student ", student.dtype(),
           ", and lse_teacher ", lse_teacher.dtype(), " and grad_kl ", grad_kl.dtype(), " lse_student's ",
           lse_student.dtype());
  cudaStream_t s = stream_for(student);
  dispatch_with_stats(student.dtype(), lse_student.dtype(), "distillation_loss backward", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::distillation_backward<T, S>(ptr<T>(student), ptr<T>(teacher), inv_temperature,
                                                         ptr<S>(lse_student), ptr<S>(lse_teacher), ptr<S>(grad_kl),
                                                         ptr<T>(dstudent), student.size(0), student.size(1), s)));
  });
}

namespace {

// Our own attention kernels, on contiguous (B, H, T, D) tensors.
void own_attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out,
                           const Tensor& lse) {
  cudaStream_t s = stream_for(q);
  int64_t head_dim = q.size(3);
  if (use_flash_attention(q, scale, {&q, &k, &v, &out})) {
    MT_CHECK(lse.dtype() == DType::kF32, "causal_attention (cuda): lse must be f32 for ", dtype_name(q.dtype()),
             " input, got ", dtype_name(lse.dtype()));
    dispatch_device_floating(q.dtype(), "causal_attention", [&]<typename T>() {
      if constexpr (sizeof(T) == 2)
        MT_CUDA_CHECK(gpu::flash_attention_forward<T>(ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<T>(out),
                                                             ptr<float>(lse), q.size(0) * q.size(1), q.size(2),
                                                             static_cast<int>(head_dim), scale, s));
    });
    return;
  }
  dispatch_with_stats(q.dtype(), lse.dtype(), "causal_attention", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::attention_forward<T, S>(ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<T>(out), ptr<S>(lse),
                                                     q.size(0) * q.size(1), q.size(2), static_cast<int>(head_dim),
                                                     scale, s)));
  });
}

void own_attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                            const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  cudaStream_t s = stream_for(q);
  int64_t head_dim = q.size(3), bh = q.size(0) * q.size(1), seq = q.size(2);
  Tensor delta = Tensor::empty({bh * seq}, q.dtype() == DType::kF64 ? DType::kF64 : DType::kF32, q.device());
  if (use_flash_attention(q, scale, {&q, &k, &v, &out, &dout, &dq, &dk, &dv})) {
    MT_CHECK(lse.dtype() == DType::kF32, "causal_attention_backward (cuda): lse must be f32 for ", dtype_name(q.dtype()),
             " input, got ", dtype_name(lse.dtype()));
    dispatch_device_floating(q.dtype(), "causal_attention_backward", [&]<typename T>() {
      if constexpr (sizeof(T) == 2)
        MT_CUDA_CHECK(gpu::flash_attention_backward<T>(
            ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<T>(out), ptr<T>(dout), ptr<float>(lse), ptr<T>(dq), ptr<T>(dk),
            ptr<T>(dv), ptr<float>(delta), bh, seq, static_cast<int>(head_dim), scale, s));
    });
    return;
  }
  dispatch_with_stats(q.dtype(), lse.dtype(), "causal_attention_backward", [&]<typename T, typename S>() {
    MT_CUDA_CHECK((gpu::attention_backward<T, S>(ptr<T>(q), ptr<T>(k), ptr<T>(v), ptr<T>(out), ptr<T>(dout),
                                                      ptr<S>(lse), ptr<T>(dq), ptr<T>(dk), ptr<T>(dv),
                                                      delta.data_ptr(), bh, seq, static_cast<int>(head_dim), scale,
                                                      s)));
  });
}

void check_attention_args(const char* op, const Tensor& q, const Tensor& lse) {
  MT_CHECK(q.dim() == 4, op, " (cuda): expected (B, H, T, D) tensors, got ", q.shape());
  MT_CHECK(lse.is_contiguous(), op, " (cuda): lse must be contiguous, got ", lse.describe());
  MT_CHECK(q.size(3) <= gpu::kAttentionMaxHeadDim, op, " (cuda): head dim at most ", gpu::kAttentionMaxHeadDim,
           ", got ", q.size(3));
}

}  // namespace

void attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out,
                       const Tensor& lse) {
  check_attention_args("causal_attention", q, lse);
  AttentionBackend backend = attention_backend();
  if (is_half(q.dtype()) && q.numel() > 0) {  // cuDNN first (mt/ops/attention_backend.h), on the views as given
    if (backend != AttentionBackend::kFlash && cudnn_attention_forward(q, k, v, scale, out, lse, backend)) {
      count_attention(AttentionBackend::kCudnn, AttentionPass::kForward);
      return;
    }
    count_attention(AttentionBackend::kFlash, AttentionPass::kForward);
  }
  run_contiguous({q, k, v}, {out}, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& o) {
    own_attention_forward(in[0], in[1], in[2], scale, o[0], lse);
  });
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                        const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  check_attention_args("causal_attention_backward", q, lse);
  AttentionBackend backend = attention_backend();
  if (is_half(q.dtype()) && q.numel() > 0) {  // cuDNN first (mt/ops/attention_backend.h), on the views as given
    if (backend != AttentionBackend::kFlash &&
        cudnn_attention_backward(q, k, v, out, dout, lse, scale, dq, dk, dv, backend, attention_determinism())) {
      count_attention(AttentionBackend::kCudnn, AttentionPass::kBackward);
      return;
    }
    count_attention(AttentionBackend::kFlash, AttentionPass::kBackward);
  }
  run_contiguous({q, k, v, out, dout}, {dq, dk, dv}, [&](const std::vector<Tensor>& in, const std::vector<Tensor>& d) {
    own_attention_backward(in[0], in[1], in[2], in[3], in[4], lse, scale, d[0], d[1], d[2]);
  });
}

void dropout(const Tensor& in, double p, uint64_t seed, uint64_t offset, const uint64_t* offset_base, const Tensor& out,
             const Tensor& mask) {
  check_contiguous("dropout", {&in, &out, &mask});
  MT_CHECK(mask.dtype() == DType::kBool, "dropout (cuda): mask must be bool, got ", mask.dtype());
  cudaStream_t s = stream_for(in);
  dispatch_device_floating(in.dtype(), "dropout", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::dropout_forward<T>(ptr<T>(in), ptr<T>(out), mask.data<bool>(), in.numel(), p, seed, offset,
                                              offset_base, s));
  });
}

}  // namespace mt::cuda
