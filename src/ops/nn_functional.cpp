// Neural-network functions: softmax/log_softmax over any dim, layer norm (alone or fused with the
// residual add before it), embedding, fused cross-entropy, the fused distillation loss, causal attention
// and dropout, each with its backward next to its forward.
// Statistics the kernels keep for backward (mean/rstd, logsumexp) are f32, or f64 for f64 inputs.
#include <algorithm>
#include <cmath>

#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

DType stat_dtype(DType t) { return t == DType::kF64 ? DType::kF64 : DType::kF32; }

// Product of all dims but the last: the row count when the last dim is the row.
int64_t leading_rows(const Shape& s) { return Shape(s.begin(), s.end() - 1).numel(); }

void check_floating(const char* op, const Tensor& t) {
  MT_CHECK(is_floating(t.dtype()), op, ": expected a floating tensor, got ", t.describe());
}

Tensor softmax_impl(const Tensor& a, int dim, SoftmaxKind kind) {
  const bool log = kind == SoftmaxKind::kLogSoftmax;
  const char* name = log ? "log_softmax" : "softmax";
  MT_CHECK(a.dim() >= 1, name, ": expected at least 1 dim, got ", a.describe());
  check_floating(name, a);
  dim = wrap_dim(dim, a.dim(), name);
  Tensor moved = a.detach().transpose(dim, -1).contiguous();  // the softmax dim last
  int64_t m = leading_rows(moved.shape()), n = moved.size(-1);
  Tensor y = Tensor::empty(moved.shape(), a.dtype(), a.device());
  if (y.numel() > 0) kernels().softmax.get(a.device(), name)(moved.view({m, n}), y.view({m, n}), kind);
  Tensor out = y.transpose(dim, -1).contiguous();
  SavedTensor saved(y, log ? "log_softmax output" : "softmax output");
  record_function(log ? "LogSoftmaxBackward" : "SoftmaxBackward", {a}, {out}, [saved, dim, m, n, kind](const std::vector<Tensor>& g) {
    const Tensor& yv = saved.get();
    Tensor gm = g[0].transpose(dim, -1).contiguous();
    Tensor gin = Tensor::empty(gm.shape(), yv.dtype(), yv.device());
    if (gin.numel() > 0)
      kernels().softmax_backward.get(yv.device(), "softmax backward")(gm.view({m, n}), yv.view({m, n}), gin.view({m, n}), kind);
    return std::vector<Tensor>{gin.transpose(dim, -1).contiguous()};
  });
  return out;
}

}  // namespace

Tensor softmax(const Tensor& a, int dim) { return softmax_impl(a, dim, SoftmaxKind::kSoftmax); }
Tensor log_softmax(const Tensor& a, int dim) { return softmax_impl(a, dim, SoftmaxKind::kLogSoftmax); }

namespace {

// Weight and bias (optional) of a layer norm over the last dim of x: (n), x's dtype and device.
void check_layer_norm_args(const char* op, const Tensor& x, const Tensor& w, const Tensor& b) {
  MT_CHECK(x.dim() >= 1, op, ": expected at least 1 dim, got ", x.describe());
  check_floating(op, x);
  int64_t n = x.size(-1);
  MT_CHECK(w.dim() == 1 && w.size(0) == n, op, ": weight ", w.shape(), " does not match the last dim of input ",
           x.shape());
  check_same_dtype(op, x, w);
  check_same_device(op, x, w);
  if (b.defined()) {
    MT_CHECK(b.dim() == 1 && b.size(0) == n, op, ": bias ", b.shape(), " does not match the last dim of input ",
             x.shape());
    check_same_dtype(op, x, b);
    check_same_device(op, x, b);
  }
}

// The dtype of a layer norm's dw and db, which the kernels write together: f32 straight from their sums
// for half leaves (Note [f32 weight gradients] in src/ops/linalg.cpp), else the weight's dtype.
DType norm_grad_dtype(const Tensor& w, const Tensor& b) {
  const DType g = param_grad_dtype(w);
  return b.defined() && param_grad_dtype(b) != g ? w.dtype() : g;
}

}  // namespace

Tensor layer_norm(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  check_layer_norm_args("layer_norm", x, w, b);
  int64_t n = x.size(-1), m = leading_rows(x.shape());
  Tensor rows = x.detach().contiguous().view({m, n});
  Tensor wc = w.detach().contiguous();
  Tensor y = Tensor::empty({m, n}, x.dtype(), x.device());
  Tensor mean = Tensor::empty({m}, stat_dtype(x.dtype()), x.device());
  Tensor rstd = Tensor::empty({m}, stat_dtype(x.dtype()), x.device());
  if (y.numel() > 0)
    kernels().layer_norm_forward.get(x.device(), "layer_norm")(rows, wc, b.defined() ? b.detach().contiguous() : Tensor(),
                                                                eps, y, mean, rstd);
  Tensor out = y.view(x.shape());
  SavedTensor sx(rows, "layer_norm input"), sw(wc, "layer_norm weight");
  bool has_bias = b.defined();
  const DType gd = norm_grad_dtype(w, b);
  record_function("LayerNormBackward", {x, w, b}, {out}, [sx, sw, mean, rstd, has_bias, gd](const std::vector<Tensor>& g) {
    const Tensor& xr = sx.get();
    const Tensor& wv = sw.get();
    Tensor dx = Tensor::empty(xr.shape(), xr.dtype(), xr.device());
    Tensor dw = Tensor::empty(wv.shape(), gd, wv.device());
    Tensor db = has_bias ? Tensor::empty(wv.shape(), gd, wv.device()) : Tensor();
    if (xr.numel() > 0) {
      kernels().layer_norm_backward.get(xr.device(), "layer_norm backward")(g[0].contiguous().view(xr.shape()), xr, wv,
                                                                             mean, rstd, dx, dw, db);
    } else {
      fill_(dw, 0.0);
      if (has_bias) fill_(db, 0.0);
    }
    return std::vector<Tensor>{dx.view(g[0].shape()), dw, db};
  });
  return out;
}

// Note [Residual add fused with LayerNorm]
// A pre-LN block computes h = x + attn(ln1(x)) and then ln2(h) (src/nn/transformer_block.cpp). Done apart,
// the forward is an add kernel (reads x and r, writes h) and a LayerNorm kernel (reads h again, writes y),
// and in the backward the residual path's gradient of h and LayerNorm's input gradient meet in the engine,
// which adds them in a third kernel (reads both, writes the sum). add_layer_norm makes each direction one
// pass over the rows: the forward reads x and r and writes h (still needed: it is the residual stream and
// LN's saved input) and y; the backward reads dy, h and dh and writes dx = dh + LN's input gradient while
// it sums dw and db. Per (B, T, d) activation that is 4 passes of memory instead of 5 forward and 4 instead
// of 6 backward, one launch fewer each way, and no temporary for LN's own dx.
// One node with two outputs; either gradient may be missing: without dy, dx is dh and w, b get none;
// without dh it is LayerNorm's backward alone. x and r are handed the same gradient tensor (the engine and
// AccumulateGrad never write into a gradient they receive). In f32 on the CPU the values are those of the
// separate ops bit for bit: h rounds the same sum, and dx adds dh to the same f32 LN gradient; in bf16/f16
// dx is rounded once instead of twice.
std::pair<Tensor, Tensor> add_layer_norm(const Tensor& x, const Tensor& r, const Tensor& w, const Tensor& b,
                                         double eps) {
  check_layer_norm_args("add_layer_norm", x, w, b);
  check_same_shape("add_layer_norm", x, r);
  check_same_dtype("add_layer_norm", x, r);
  check_same_device("add_layer_norm", x, r);
  int64_t n = x.size(-1), m = leading_rows(x.shape());
  Tensor xr = x.detach().contiguous().view({m, n});
  Tensor rr = r.detach().contiguous().view({m, n});
  Tensor wc = w.detach().contiguous();
  Tensor h = Tensor::empty({m, n}, x.dtype(), x.device());
  Tensor y = Tensor::empty({m, n}, x.dtype(), x.device());
  Tensor mean = Tensor::empty({m}, stat_dtype(x.dtype()), x.device());
  Tensor rstd = Tensor::empty({m}, stat_dtype(x.dtype()), x.device());
  if (y.numel() > 0)
    kernels().add_layer_norm_forward.get(x.device(), "add_layer_norm")(
        xr, rr, wc, b.defined() ? b.detach().contiguous() : Tensor(), eps, h, y, mean, rstd);
  Tensor h_out = h.view(x.shape()), y_out = y.view(x.shape());
  SavedTensor sh(h, "add_layer_norm sum"), sw(wc, "add_layer_norm weight");
  bool has_bias = b.defined();
  const DType gd = norm_grad_dtype(w, b);
  Shape shape = x.shape();
  record_function("AddLayerNormBackward", {x, r, w, b}, {h_out, y_out},
                  [sh, sw, mean, rstd, has_bias, gd, shape](const std::vector<Tensor>& g) {
    const Tensor &dh = g[0], &dy = g[1];
    if (!dy.defined()) return std::vector<Tensor>{dh, dh, Tensor(), Tensor()};  // dh may be undefined too
    const Tensor& hv = sh.get();
    const Tensor& wv = sw.get();
    Tensor dx = Tensor::empty(hv.shape(), hv.dtype(), hv.device());
    Tensor dw = Tensor::empty(wv.shape(), gd, wv.device());
    Tensor db = has_bias ? Tensor::empty(wv.shape(), gd, wv.device()) : Tensor();
    if (hv.numel() == 0) {
      fill_(dw, 0.0);
      if (has_bias) fill_(db, 0.0);
    } else if (dh.defined()) {
      kernels().add_layer_norm_backward.get(hv.device(), "add_layer_norm backward")(
          dy.contiguous().view(hv.shape()), dh.contiguous().view(hv.shape()), hv, wv, mean, rstd, dx, dw, db);
    } else {
      kernels().layer_norm_backward.get(hv.device(), "add_layer_norm backward")(dy.contiguous().view(hv.shape()), hv,
                                                                                 wv, mean, rstd, dx, dw, db);
    }
    Tensor dxv = dx.view(shape);
    return std::vector<Tensor>{dxv, dxv, dw, db};
  });
  return {h_out, y_out};
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  MT_CHECK(weight.dim() == 2, "embedding: weight must be (V, d), got ", weight.describe());
  MT_CHECK(ids.dtype() == DType::kI32 || ids.dtype() == DType::kI64, "embedding: ids must be i32 or i64, got ",
           ids.describe());
  Tensor rows = index_select(weight, 0, ids.detach().reshape({ids.numel()}));  // (n, d)
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.size(1));
  return rows.view(out_shape);
}

Tensor cross_entropy_per_row(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  MT_CHECK(logits.dim() == 2, "cross_entropy: logits must be (N, V), got ", logits.describe());
  check_floating("cross_entropy", logits);
  MT_CHECK(targets.dtype() == DType::kI32 || targets.dtype() == DType::kI64, "cross_entropy: targets must be i32 or i64, got ",
           targets.describe());
  MT_CHECK(targets.dim() == 1 && targets.size(0) == logits.size(0), "cross_entropy: targets ", targets.shape(),
           " do not match logits ", logits.shape(), " (expected (", logits.size(0), "))");
  check_same_device("cross_entropy", logits, targets);
  Tensor x = logits.detach().contiguous();
  Tensor t = targets.detach().to(DType::kI64).contiguous();
  int64_t rows = x.size(0);
  DType sd = stat_dtype(x.dtype());
  Tensor losses = Tensor::empty({rows}, sd, x.device());
  Tensor lse = Tensor::empty({rows}, sd, x.device());
  if (x.numel() > 0) {
    kernels().cross_entropy_forward.get(x.device(), "cross_entropy")(x, t, ignore_index, losses, lse);
  } else {
    fill_(losses, 0.0);
  }
  SavedTensor sx(x, "cross_entropy logits");
  record_function("CrossEntropyBackward", {logits}, {losses}, [sx, t, lse, ignore_index, sd](const std::vector<Tensor>& g) {
    const Tensor& xv = sx.get();
    // (N, V): over the logits when nothing else reads them (Note [Gradients over saved memory]).
    Tensor dlogits = sx.reusable() ? xv : Tensor::empty(xv.shape(), xv.dtype(), xv.device());
    if (xv.numel() > 0)
      kernels().cross_entropy_backward.get(xv.device(), "cross_entropy backward")(xv, t, ignore_index, lse,
                                                                                   g[0].to(sd).contiguous(), dlogits);
    return std::vector<Tensor>{dlogits};
  });
  return losses;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& targets, int64_t ignore_index) {
  return mean_over_targets(cross_entropy_per_row(logits, targets, ignore_index), targets, ignore_index);
}

Tensor mean_over_targets(const Tensor& per_row, const Tensor& targets, int64_t ignore_index) {
  TensorOptions o{per_row.dtype(), per_row.device()};
  Tensor kept = ne(targets.detach().to(DType::kI64), full({}, static_cast<double>(ignore_index), {DType::kI64, per_row.device()}));
  Tensor count = maximum(sum(cast(kept, per_row.dtype())), ones({}, o));  // all ignored: loss 0, not 0/0
  return div(sum(per_row), count);
}

Tensor distillation_loss(const Tensor& student_logits, const Tensor& teacher_logits, double temperature) {
  MT_CHECK(student_logits.dim() == 2, "distillation_loss: student logits must be (N, V), got ", student_logits.describe());
  check_floating("distillation_loss", student_logits);
  check_floating("distillation_loss", teacher_logits);
  check_same_shape("distillation_loss (student, teacher)", student_logits, teacher_logits);
  check_same_device("distillation_loss", student_logits, teacher_logits);
  MT_CHECK(temperature > 0, "distillation_loss: temperature must be > 0, got ", temperature);
  // One fused pass each way over the (N, V) logits (Kernels::DistillationForward/Backward); the teacher is
  // cast to the student's dtype when they differ.
  Tensor s = student_logits.detach().contiguous();
  Tensor t = teacher_logits.detach().to(s.dtype()).contiguous();
  int64_t rows = s.size(0);
  DType sd = stat_dtype(s.dtype());
  double inv_t = 1.0 / temperature;
  Tensor kl = Tensor::empty({rows}, sd, s.device());  // (N)
  Tensor lse_s = Tensor::empty({rows}, sd, s.device()), lse_t = Tensor::empty({rows}, sd, s.device());
  if (s.numel() > 0) {
    kernels().distillation_forward.get(s.device(), "distillation_loss")(s, t, inv_t, kl, lse_s, lse_t);
  } else {
    fill_(kl, 0.0);
  }
  SavedTensor ss(s, "distillation student logits"), st(t, "distillation teacher logits");
  record_function("DistillationBackward", {student_logits}, {kl}, [ss, st, lse_s, lse_t, inv_t, sd](const std::vector<Tensor>& g) {
    const Tensor& sv = ss.get();
    Tensor ds = Tensor::empty(sv.shape(), sv.dtype(), sv.device());
    if (sv.numel() > 0)
      kernels().distillation_backward.get(sv.device(), "distillation_loss backward")(sv, st.get(), inv_t, lse_s, lse_t,
                                                                                     g[0].to(sd).contiguous(), ds);
    return std::vector<Tensor>{ds};
  });
  // The mean of the rows' KL, times T^2 (gradients keep the magnitude of T = 1: Hinton et al.).
  return mul(sum(kl), temperature * temperature / static_cast<double>(std::max<int64_t>(rows, 1)));
}

namespace {

// Note [Packed QKV]: attention reads q, k, v as (B, H, T, D) views of the QKV projection's (B, T, 3, H, D)
// rows and writes its output as the (B, T, H, D) rows the output projection reads, so that no head is
// ever copied into a (B, H, T, D) buffer and back (4 copies a layer forward, 4 backward, plus the
// gradient of the three narrows summed into one buffer). The kernel contract takes such views (unit last
// stride); cuDNN reads and writes them in place, our own kernels run on contiguous copies.
// The (B, H, T, D) view of rows (B, T, n * H * D) holding n heads-blocks, block `index`.
Tensor heads_view(const Tensor& rows, int64_t heads, int64_t blocks, int64_t index) {
  int64_t b = rows.size(0), t = rows.size(1), d = rows.size(2) / (blocks * heads);
  return rows.view({b, t, blocks, heads, d}).select(2, index).permute({0, 2, 1, 3});
}

double attention_scale(std::optional<double> scale, int64_t head_dim) {
  return scale.value_or(head_dim > 0 ? 1.0 / std::sqrt(static_cast<double>(head_dim)) : 1.0);
}

// Runs the forward kernel on (B, H, T, D) views into `out`; returns the row logsumexp (B, H, T).
Tensor attention_forward(const Tensor& q, const Tensor& k, const Tensor& v, double scale, const Tensor& out) {
  Tensor lse = Tensor::empty({q.size(0), q.size(1), q.size(2)}, stat_dtype(q.dtype()), q.device());
  if (out.numel() > 0) kernels().attention_forward.get(q.device(), "causal_attention")(q, k, v, scale, out, lse);
  return lse;
}

void attention_backward(const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& out, const Tensor& dout,
                        const Tensor& lse, double scale, const Tensor& dq, const Tensor& dk, const Tensor& dv) {
  if (q.numel() > 0)
    kernels().attention_backward.get(q.device(), "causal_attention backward")(q, k, v, out, dout, lse, scale, dq, dk,
                                                                             dv);
}

}  // namespace

Tensor causal_attention(const Tensor& q, const Tensor& k, const Tensor& v, std::optional<double> scale) {
  MT_CHECK(q.dim() == 4, "causal_attention: q must be (B, H, T, D), got ", q.describe());
  check_floating("causal_attention", q);
  check_same_shape("causal_attention (q, k)", q, k);
  check_same_shape("causal_attention (q, v)", q, v);
  check_same_dtype("causal_attention", q, k);
  check_same_dtype("causal_attention", q, v);
  check_same_device("causal_attention", q, k);
  check_same_device("causal_attention", q, v);
  double s = attention_scale(scale, q.size(3));
  Tensor qc = q.detach().contiguous(), kc = k.detach().contiguous(), vc = v.detach().contiguous();
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor lse = attention_forward(qc, kc, vc, s, out);
  SavedTensor sq(qc, "attention q"), sk(kc, "attention k"), sv(vc, "attention v"), so(out, "attention output");
  record_function("CausalAttentionBackward", {q, k, v}, {out}, [sq, sk, sv, so, lse, s](const std::vector<Tensor>& g) {
    const Tensor& qv = sq.get();
    Tensor dq = Tensor::empty(qv.shape(), qv.dtype(), qv.device());
    Tensor dk = Tensor::empty(qv.shape(), qv.dtype(), qv.device());
    Tensor dv = Tensor::empty(qv.shape(), qv.dtype(), qv.device());
    attention_backward(qv, sk.get(), sv.get(), so.get(), g[0].contiguous(), lse, s, dq, dk, dv);
    return std::vector<Tensor>{dq, dk, dv};
  });
  return out;
}

Tensor causal_attention_qkv(const Tensor& qkv, int64_t heads, std::optional<double> scale) {
  MT_CHECK(qkv.dim() == 3 && heads > 0 && qkv.size(2) % (3 * heads) == 0, "causal_attention_qkv: expected qkv (B, T, ",
           "3 * heads * D) for ", heads, " heads, got ", qkv.describe());
  check_floating("causal_attention_qkv", qkv);
  int64_t b = qkv.size(0), t = qkv.size(1), c = qkv.size(2) / 3;
  double s = attention_scale(scale, c / heads);
  Tensor packed = qkv.detach().contiguous();                       // (B, T, 3C)
  Tensor y = Tensor::empty({b, t, c}, qkv.dtype(), qkv.device());  // (B, T, C)
  auto q = [heads](const Tensor& rows) { return heads_view(rows, heads, 3, 0); };
  auto k = [heads](const Tensor& rows) { return heads_view(rows, heads, 3, 1); };
  auto v = [heads](const Tensor& rows) { return heads_view(rows, heads, 3, 2); };
  auto o = [heads](const Tensor& rows) { return heads_view(rows, heads, 1, 0); };
  Tensor lse = attention_forward(q(packed), k(packed), v(packed), s, o(y));
  SavedTensor sp(packed, "attention qkv"), sy(y, "attention output");
  record_function("CausalAttentionQkvBackward", {qkv}, {y}, [sp, sy, lse, s, q, k, v, o](const std::vector<Tensor>& g) {
    const Tensor& rows = sp.get();
    Tensor dqkv = Tensor::empty(rows.shape(), rows.dtype(), rows.device());  // (B, T, 3C), every element written
    attention_backward(q(rows), k(rows), v(rows), o(sy.get()), o(g[0].contiguous()), lse, s, q(dqkv), k(dqkv), v(dqkv));
    return std::vector<Tensor>{dqkv};
  });
  return y;
}

Tensor dropout(const Tensor& x, double p, Generator& gen) {
  MT_CHECK(p >= 0.0 && p < 1.0, "dropout: p must be in [0, 1), got ", p);
  if (p == 0.0) return x;
  check_floating("dropout", x);
  uint64_t offset = gen.reserve(x.numel());
  Tensor in = x.detach().contiguous();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  Tensor mask = Tensor::empty(x.shape(), DType::kBool, x.device());
  if (out.numel() > 0) kernels().dropout.get(x.device(), "dropout")(in, p, gen.seed(), offset, gen.device_base(), out, mask);
  record_function("DropoutBackward", {x}, {out}, [mask, p](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(mul(g[0], cast(mask, g[0].dtype())), 1.0 / (1.0 - p))};
  });
  return out;
}

}  // namespace mt
