// Linear algebra ops: matmul (numpy semantics: 1-d operands, broadcast batch dims), bmm, linear
// (x @ w^T + b), the fused LM head loss, and GPT-2's MLP and the MoE experts' MLP (batched, or per expert
// over a packed buffer) with GELU in the GEMMs. All reduce to the Matmul kernel's (B, M, K) @ (B, K, N)
// contract; backwards call the same kernel with transposes and sum over batch entries that were broadcast.
#include <algorithm>
#include <optional>

#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

bool needs_grad(const Tensor& t) { return t.defined() && t.requires_grad(); }

// Note [f32 weight gradients]: a half parameter gathers its gradient in f32 (Note [f32 main gradients],
// mt/graph/node.h). So the GEMMs of a weight's or bias's gradient write f32 straight from the f32
// accumulator (cuBLASLt's D in f32 from bf16 operands), and AccumulateGrad adopts that fresh tensor
// instead of casting a rounded bf16 copy: per parameter one pass over its gradient and one rounding
// fewer. Only for a parameter itself (a leaf): a gradient flowing on to an op keeps its tensor's dtype
// (param_grad_dtype, mt/graph/node.h). The layer norms' weight and bias gradients do the same.

// out (B, M, N) = op(a) @ op(b) (+ bias (N)); a, b contiguous 3-d, batch 1 or B; written into a given
// contiguous tensor (gemm_into) or a new one (gemm). out in a's dtype, or in f32 from half operands (no bias then).
void gemm_into(const Tensor& a, Transpose ta, const Tensor& b, Transpose tb, const Tensor& out,
               const Tensor& bias = Tensor()) {
  if (out.numel() > 0) kernels().matmul.get(a.device(), "matmul")(a, ta, b, tb, out, bias, Accumulate::kNo);
}

Tensor gemm(const Tensor& a, Transpose ta, const Tensor& b, Transpose tb, const Tensor& bias = Tensor(),
            std::optional<DType> out_dtype = std::nullopt) {
  int64_t batch = a.size(0) == 1 ? b.size(0) : a.size(0);
  int64_t m = ta == Transpose::kYes ? a.size(2) : a.size(1);
  int64_t n = tb == Transpose::kYes ? b.size(1) : b.size(2);
  Tensor out = Tensor::empty({batch, m, n}, out_dtype.value_or(a.dtype()), a.device());
  gemm_into(a, ta, b, tb, out, bias);
  return out;
}

// A matmul operand (at least 2-d, detached) as the kernel's contiguous (1 or B, rows, cols).
struct BatchOperand {
  Tensor t3;
  bool shared = false;  // batch 1, used by every batch entry
};

BatchOperand batch_operand(const Tensor& x, const Shape& batch) {
  int64_t rows = x.size(-2), cols = x.size(-1), count = batch.numel();
  int64_t own = Shape(x.shape().begin(), x.shape().end() - 2).numel();
  if (own == 1 && count != 1) return {x.reshape({1, rows, cols}).contiguous(), true};
  if (own == count) return {x.reshape({count, rows, cols}).contiguous(), false};
  Shape full = batch;  // partly broadcast, e.g. (2, 1) against (1, 3): materialise the expansion
  full.push_back(rows);
  full.push_back(cols);
  return {x.expand(full).contiguous().reshape({count, rows, cols}), false};
}

// Gradient of a (B', r, c) kernel operand back to the operand's own shape.
Tensor operand_grad(Tensor g3, bool shared, const Shape& batch, const Shape& shape2, const Shape& shape) {
  if (shared) {
    if (g3.size(0) > 1) g3 = sum(g3, {0}, true);
    return g3.reshape(shape);
  }
  Shape full = batch;
  full.push_back(shape2[shape2.dim() - 2]);
  full.push_back(shape2[shape2.dim() - 1]);
  return sum_to_shape(g3.reshape(full), shape2).reshape(shape);
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  MT_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands need at least 1 dim, got ", a.shape(), " @ ", b.shape());
  check_same_device("matmul", a, b);
  check_same_dtype("matmul", a, b);
  MT_CHECK(is_floating(a.dtype()), "matmul: expected floating tensors, got ", a.describe(), " @ ", b.describe());
  Tensor a2 = a.dim() == 1 ? a.detach().unsqueeze(0) : a.detach();  // (K) -> (1, K)
  Tensor b2 = b.dim() == 1 ? b.detach().unsqueeze(1) : b.detach();  // (K) -> (K, 1)
  MT_CHECK(a2.size(-1) == b2.size(-2), "matmul: inner dims differ: ", a.shape(), " @ ", b.shape());
  Shape a_batch(a2.shape().begin(), a2.shape().end() - 2), b_batch(b2.shape().begin(), b2.shape().end() - 2);
  Shape batch = broadcast_shapes(a_batch, b_batch, "matmul (batch dims)");
  int64_t count = batch.numel(), m = a2.size(-2), k = a2.size(-1), n = b2.size(-1);
  BatchOperand pa = batch_operand(a2, batch), pb = batch_operand(b2, batch);
  // A batched left operand against a shared right one is one GEMM with the batch folded into M.
  Tensor a3 = pb.shared && !pa.shared ? pa.t3.view({1, count * m, k}) : pa.t3;
  Tensor b3 = pb.t3;
  Tensor out3 = gemm(a3, Transpose::kNo, b3, Transpose::kNo);
  Shape out_shape = batch;
  if (a.dim() > 1) out_shape.push_back(m);
  if (b.dim() > 1) out_shape.push_back(n);
  Tensor out = out3.view(out_shape);
  SavedTensor sa(a3, "matmul input a"), sb(b3, "matmul input b");
  bool need_a = needs_grad(a), need_b = needs_grad(b), a_shared = pa.shared, b_shared = pb.shared;
  Shape a_shape = a.shape(), b_shape = b.shape(), a_shape2 = a2.shape(), b_shape2 = b2.shape(), g_shape = out3.shape();
  record_function("MatmulBackward", {a, b}, {out}, [=](const std::vector<Tensor>& g) {
    Tensor g3 = g[0].contiguous().view(g_shape);  // (B', M', N)
    Tensor ga, gb;
    if (need_a) {
      Tensor ga3 = gemm(g3, Transpose::kNo, sb.get(), Transpose::kYes);  // dA = dY @ B^T
      ga = operand_grad(ga3, a_shared, batch, a_shape2, a_shape);
    }
    if (need_b) {
      Tensor gb3 = gemm(sa.get(), Transpose::kYes, g3, Transpose::kNo);  // dB = A^T @ dY
      gb = operand_grad(gb3, b_shared, batch, b_shape2, b_shape);
    }
    return std::vector<Tensor>{ga, gb};
  });
  return out;
}

Tensor bmm(const Tensor& a, const Tensor& b) {
  MT_CHECK(a.dim() == 3 && b.dim() == 3, "bmm: expected (B, M, K) @ (B, K, N), got ", a.shape(), " @ ", b.shape());
  MT_CHECK(a.size(0) == b.size(0), "bmm: batch sizes differ: ", a.shape(), " @ ", b.shape());
  MT_CHECK(a.size(2) == b.size(1), "bmm: inner dims differ: ", a.shape(), " @ ", b.shape());
  return matmul(a, b);
}

namespace {

// linear and linear_f32_out: y (.., out) = x @ w^T (+ b) in `out_dtype` (x's, or f32 from half operands).
Tensor linear_as(const Tensor& x, const Tensor& w, const Tensor& b, DType out_dtype) {
  MT_CHECK(w.dim() == 2, "linear: weight must be (out, in), got ", w.describe());
  MT_CHECK(x.dim() >= 1, "linear: input must have at least 1 dim, got ", x.describe());
  MT_CHECK(x.dtype() == w.dtype(), "linear: input is ", dtype_name(x.dtype()), " but weight is ",
           dtype_name(w.dtype()), " (", x.describe(), ", ", w.describe(), ")");
  check_same_device("linear", x, w);
  MT_CHECK(is_floating(x.dtype()), "linear: expected floating tensors, got ", x.describe());
  int64_t in = w.size(1), out_features = w.size(0);
  MT_CHECK(x.size(-1) == in, "linear: input features ", x.size(-1), " of ", x.shape(), " differ from weight ",
           w.shape(), " (out, in)");
  if (b.defined()) {
    MT_CHECK(b.dim() == 1 && b.size(0) == out_features, "linear: bias must be (", out_features, "), got ", b.shape());
    MT_CHECK(b.dtype() == x.dtype(), "linear: input is ", dtype_name(x.dtype()), " but bias is ", dtype_name(b.dtype()));
    check_same_device("linear", x, b);
  }
  int64_t rows = Shape(x.shape().begin(), x.shape().end() - 1).numel();
  Tensor x3 = x.detach().reshape({1, rows, in}).contiguous();
  Tensor w3 = w.detach().reshape({1, out_features, in}).contiguous();
  Tensor out3 = gemm(x3, Transpose::kNo, w3, Transpose::kYes, b.defined() ? b.detach().contiguous() : Tensor(), out_dtype);
  Shape out_shape = x.shape();
  out_shape.back() = out_features;
  Tensor out = out3.view(out_shape);  // (.., out)
  SavedTensor sx(x3, "linear input"), sw(w3, "linear weight");
  bool need_x = needs_grad(x), need_w = needs_grad(w), need_b = needs_grad(b);
  DType w_grad = param_grad_dtype(w), b_grad = need_b ? param_grad_dtype(b) : w_grad;  // Note [f32 weight gradients]
  Shape x_shape = x.shape(), w_shape = w.shape();
  const DType x_dtype = x.dtype();
  record_function("LinearBackward", {x, w, b}, {out}, [=](const std::vector<Tensor>& g) {
    Tensor g3 = g[0].to(x_dtype).contiguous().view({1, rows, out_features});  // an f32 output's gradient rounded
    Tensor gx, gw, gb;
    if (need_x) gx = gemm(g3, Transpose::kNo, sw.get(), Transpose::kNo).view(x_shape);       // dY @ W
    if (need_w) gw = gemm(g3, Transpose::kYes, sx.get(), Transpose::kNo, Tensor(), w_grad).view(w_shape);  // dY^T @ X
    if (need_b)  // 1^T @ dY: one pass over dY, f32 accumulation in the GEMM
      gb = gemm(shared_ones(rows, {g3.dtype(), g3.device()}).view({1, 1, rows}), Transpose::kNo, g3, Transpose::kNo,
                Tensor(), b_grad)
               .view({out_features});
    return std::vector<Tensor>{gx, gw, gb};
  });
  return out;
}

}  // namespace

Tensor linear(const Tensor& x, const Tensor& w, const Tensor& b) { return linear_as(x, w, b, x.dtype()); }

// Note [Fused LM head loss]: the LM head's loss went over the (N, V) logits three times: the loss's
// forward (logsumexp), then its backward (read them, write dlogits = diag(g) (softmax - onehot)). With
// 16 x 1024 tokens and a 50304 vocabulary that is 1.65 GB per pass in bf16. Here the loss kernel writes
// P = softmax - onehot over the logits as it computes the loss (Kernels::CrossEntropyWithGrad: one read,
// one write), and the backward touches no (N, V) matrix outside the GEMMs:
//   dX = diag(g) (P @ W)   and   dW = P^T @ (diag(g) X),
// so the loss gradients g (N) scale rows of (N, d) tensors. For the mean over targets, g is the upstream
// gradient over the target count: a power of two in the usual batch, and so exact in bf16.
Tensor linear_cross_entropy(const Tensor& x, const Tensor& w, const Tensor& targets, int64_t ignore_index) {
  MT_CHECK(x.dim() == 2 && w.dim() == 2, "linear_cross_entropy: expected x (N, d) and w (V, d), got ", x.describe(),
           " and ", w.describe());
  MT_CHECK(x.size(1) == w.size(1), "linear_cross_entropy: x ", x.shape(), " and w ", w.shape(), " differ in d");
  check_same_dtype("linear_cross_entropy", x, w);
  check_same_device("linear_cross_entropy", x, w);
  MT_CHECK(is_floating(x.dtype()), "linear_cross_entropy: expected floating tensors, got ", x.describe());
  MT_CHECK(targets.dtype() == DType::kI32 || targets.dtype() == DType::kI64,
           "linear_cross_entropy: targets must be i32 or i64, got ", targets.describe());
  MT_CHECK(targets.dim() == 1 && targets.size(0) == x.size(0), "linear_cross_entropy: targets ", targets.shape(),
           " do not match x ", x.shape(), " (expected (", x.size(0), "))");
  check_same_device("linear_cross_entropy", x, targets);
  const int64_t n = x.size(0), d = x.size(1), vocab = w.size(0);
  const Device dev = x.device();
  Tensor x3 = x.detach().contiguous().view({1, n, d}), w3 = w.detach().contiguous().view({1, vocab, d});
  Tensor t = targets.detach().to(DType::kI64).contiguous();
  Tensor p = gemm(x3, Transpose::kNo, w3, Transpose::kYes);  // (1, N, V): the logits, then P over them
  Tensor losses = Tensor::empty({n}, x.dtype() == DType::kF64 ? DType::kF64 : DType::kF32, dev);  // (N)
  if (p.numel() > 0)
    kernels().cross_entropy_with_grad.get(dev, "linear_cross_entropy")(p.view({n, vocab}), t, ignore_index, losses);
  else
    fill_(losses, 0.0);
  SavedTensor sx(x3, "linear_cross_entropy input"), sw(w3, "linear_cross_entropy weight");
  SavedTensor sp(p, "linear_cross_entropy softmax - onehot");
  const bool need_x = needs_grad(x), need_w = needs_grad(w);
  const DType w_grad = param_grad_dtype(w), x_dtype = x.dtype();  // Note [f32 weight gradients]
  record_function("LinearCrossEntropyBackward", {x, w}, {losses}, [=](const std::vector<Tensor>& g) {
    Tensor g_rows = g[0].to(x_dtype).contiguous().view({1, n, 1});  // (1, N, 1): each row's loss gradient
    Tensor gx, gw;
    if (need_x) gx = mul(gemm(sp.get(), Transpose::kNo, sw.get(), Transpose::kNo), g_rows).view({n, d});  // diag(g) P W
    if (need_w)
      gw = gemm(sp.get(), Transpose::kYes, mul(sx.get(), g_rows), Transpose::kNo, Tensor(), w_grad).view({vocab, d});
    return std::vector<Tensor>{gx, gw};  // P^T diag(g) X above
  });
  return mean_over_targets(losses, targets, ignore_index);
}

Tensor linear_f32_out(const Tensor& x, const Tensor& w) {
  MT_CHECK(is_half(x.dtype()), "linear_f32_out: expected bf16 or f16 operands, got ", x.describe());
  return linear_as(x, w, Tensor(), DType::kF32);
}

// Note [GELU in the GEMM epilogue]: the MLP is one op so that GELU rides on its GEMMs (cuBLASLt's
// GELU_AUX_BIAS and DGELU epilogues): the forward's fc GEMM writes the pre-activation (kept for the
// backward) and its gelu at once; the backward's dH = dY @ w2 GEMM multiplies by gelu'(pre) as it writes.
// That saves, per layer and step, the GELU pass each way (re-reading and re-writing the (tokens, hidden)
// activation). (DGELU_BGRAD, which would also sum fc's bias gradient, measured slower than its parts on
// the H200: src/ops/cuda/matmul_cuda.cpp.) The MoE experts are the same MLP batched over experts, with
// weights stored (in, out) (experts_mlp_gelu), so both ops share one body; batched, the backward runs its
// parts (the DGELU epilogue measured 2.4x slower than GEMM + gelu' pass there: src/ops/cuda/matmul_cuda.cpp).
// Where the backend has no fused kernel (the CPU, f64, widths that are not a multiple of 8) the op runs
// the same parts one by one; the two agree to the dtype's rounding (the epilogue takes gelu of the f32
// accumulator, the parts of the pre-activation rounded to the dtype).
namespace {

// How an MLP's weights are stored: linear's (out, in), or the experts' (in, out).
enum class WeightLayout { kOutIn, kInOut };

// The MLP's forward for each of B batch entries, into given tensors: pre = x @ W1 + b1, h = gelu(pre)
// (B, M, hidden), y = h @ W2 + b2 (B, M, d); x (B, M, d); w1, w2 (B, ., .) in `layout`; b1 (B, 1, hidden),
// b2 (B, 1, d). All contiguous (views of a larger tensor are fine).
void mlp_gelu_forward(const Tensor& x3, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                      WeightLayout layout, const Tensor& pre, const Tensor& h, const Tensor& y) {
  if (x3.size(1) == 0) return;
  Device dev = x3.device();
  // x @ W for a stored W is op(W) = W^T for (out, in) weights.
  const Transpose forward_t = layout == WeightLayout::kOutIn ? Transpose::kYes : Transpose::kNo;
  if (!kernels().matmul_bias_gelu.get(dev, "mlp_gelu")(x3, w1, forward_t, b1, pre, h)) {
    gemm_into(x3, Transpose::kNo, w1, forward_t, pre, b1);
    kernels().unary.get(dev, "mlp_gelu")(UnaryOp::kGelu, pre, h, 0.0);
  }
  gemm_into(h, Transpose::kNo, w2, forward_t, y, b2);
}

// The MLP's gradients, written into tensors of the operands' (B, ., .) shapes (x undefined: not wanted).
struct MlpGrads {
  Tensor x, w1, b1, w2, b2;
};

// The backward of mlp_gelu_forward from dy (B, M, d) and the forward's tensors; ones_row (1, 1, M) of
// ones in x's dtype sums the bias gradients.
void mlp_gelu_backward(const Tensor& dy, const Tensor& x3, const Tensor& w1, const Tensor& w2, const Tensor& pre,
                       const Tensor& h, WeightLayout layout, const Tensor& ones_row, const MlpGrads& out) {
  const int64_t batch = x3.size(0), rows = x3.size(1), hidden = pre.size(2);
  if (rows == 0) {  // no rows: every parameter gradient is zero
    for (const Tensor* g : {&out.w1, &out.b1, &out.w2, &out.b2}) fill_(*g, 0.0);
    return;
  }
  Device dev = x3.device();
  const bool out_in = layout == WeightLayout::kOutIn;
  const Transpose backward_t = out_in ? Transpose::kNo : Transpose::kYes;  // dH @ W^T is W as stored for (out, in)
  // dW2: dY^T @ h (out, in) or h^T @ dY (in, out); db2 = 1^T @ dY.
  if (out_in) gemm_into(dy, Transpose::kYes, h, Transpose::kNo, out.w2);
  else gemm_into(h, Transpose::kYes, dy, Transpose::kNo, out.w2);
  gemm_into(ones_row, Transpose::kNo, dy, Transpose::kNo, out.b2);
  // dPre = (dY @ W2^T) * gelu'(pre); fc's bias gradient 1^T @ dPre.
  Tensor dpre = Tensor::empty({batch, rows, hidden}, x3.dtype(), dev);
  if (!kernels().matmul_dgelu_bgrad.get(dev, "mlp_gelu backward")(dy, w2, backward_t, pre, dpre, out.b1)) {
    Tensor dh = gemm(dy, Transpose::kNo, w2, backward_t);
    kernels().unary_backward.get(dev, "mlp_gelu backward")(UnaryGradOp::kGelu, dh, pre, dpre);
    gemm_into(ones_row, Transpose::kNo, dpre, Transpose::kNo, out.b1);
  }
  if (out.x.defined()) gemm_into(dpre, Transpose::kNo, w1, backward_t, out.x);
  // dW1: dPre^T @ x (out, in) or x^T @ dPre (in, out).
  if (out_in) gemm_into(dpre, Transpose::kYes, x3, Transpose::kNo, out.w1);
  else gemm_into(x3, Transpose::kYes, dpre, Transpose::kNo, out.w1);
}

// What the backward allocates the MLP's gradients by: each operand's shape and gradient dtype (x's own
// dtype, each parameter's by Note [f32 weight gradients]), and whether x's gradient is wanted.
struct MlpGradLayout {
  std::vector<Shape> shapes;  // x, w1, b1, w2, b2
  std::vector<DType> dtypes;
  bool need_x = false;
  Device device;

  MlpGradLayout(const Tensor& x, const std::vector<Tensor>& params) : need_x(needs_grad(x)), device(x.device()) {
    shapes.push_back(x.shape());
    dtypes.push_back(x.dtype());
    for (const Tensor& p : params) {
      shapes.push_back(p.shape());
      dtypes.push_back(param_grad_dtype(p));
    }
  }
  MlpGrads empty() const {
    auto make = [&](size_t i) { return Tensor::empty(shapes[i], dtypes[i], device); };
    return MlpGrads{need_x ? make(0) : Tensor(), make(1), make(2), make(3), make(4)};
  }
};

// y (B, M, d) = gelu(x @ W1 + b1) @ W2 + b2 for each of B batch entries (mlp_gelu_forward's operands).
// `x_in` and the `params` (w1, b1, w2, b2) are the op's own tensors (the autograd inputs, gradients
// returned in their shapes).
Tensor mlp_gelu_batched(const Tensor& x3, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2,
                        WeightLayout layout, const Tensor& x_in, const std::vector<Tensor>& params) {
  const int64_t batch = x3.size(0), rows = x3.size(1), d = x3.size(2), hidden = b1.size(2);
  Device dev = x3.device();
  DType dt = x3.dtype();
  Tensor pre = Tensor::empty({batch, rows, hidden}, dt, dev), h = Tensor::empty({batch, rows, hidden}, dt, dev);
  Tensor y = Tensor::empty({batch, rows, d}, dt, dev);
  mlp_gelu_forward(x3, w1, b1, w2, b2, layout, pre, h, y);
  SavedTensor sx(x3, "mlp input"), sw1(w1, "mlp fc weight"), sw2(w2, "mlp proj weight");
  SavedTensor spre(pre, "mlp pre-activation"), sh(h, "mlp activation");
  const MlpGradLayout grad_layout(x_in, params);
  const Shape x3_shape = x3.shape(), w1_shape = w1.shape(), b1_shape = b1.shape(), w2_shape = w2.shape(),
              b2_shape = b2.shape();
  std::vector<Tensor> inputs{x_in};
  inputs.insert(inputs.end(), params.begin(), params.end());
  record_function("MlpGeluBackward", inputs, {y}, [=](const std::vector<Tensor>& g) {
    Tensor dy = g[0].contiguous().view({batch, rows, d});
    MlpGrads grads = grad_layout.empty();  // in the operands' shapes; the kernels see their 3-d views
    auto as3 = [](const Tensor& t, const Shape& shape) { return t.defined() ? t.view(shape) : t; };
    mlp_gelu_backward(dy, sx.get(), sw1.get(), sw2.get(), spre.get(), sh.get(), layout,
                      shared_ones(rows, {dt, dev}).view({1, 1, rows}),
                      MlpGrads{as3(grads.x, x3_shape), as3(grads.w1, w1_shape), as3(grads.b1, b1_shape),
                               as3(grads.w2, w2_shape), as3(grads.b2, b2_shape)});
    return std::vector<Tensor>{grads.x, grads.w1, grads.b1, grads.w2, grads.b2};
  });
  return y;
}

void check_mlp_operands(const char* op, const Tensor& x, std::initializer_list<const Tensor*> params) {
  for (const Tensor* t : params) {
    check_same_dtype(op, x, *t);
    check_same_device(op, x, *t);
  }
  MT_CHECK(is_floating(x.dtype()), op, ": expected floating tensors, got ", x.describe());
}

}  // namespace

Tensor mlp_gelu(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  MT_CHECK(w1.dim() == 2 && w2.dim() == 2 && b1.dim() == 1 && b2.dim() == 1 && w2.size(1) == w1.size(0) &&
               w2.size(0) == w1.size(1) && b1.size(0) == w1.size(0) && b2.size(0) == w2.size(0) && x.dim() >= 1 &&
               x.size(-1) == w1.size(1),
           "mlp_gelu: expected x (.., d), w1 (hidden, d), b1 (hidden), w2 (d, hidden), b2 (d), got ", x.describe(),
           ", ", w1.describe(), ", ", b1.describe(), ", ", w2.describe(), ", ", b2.describe());
  check_mlp_operands("mlp_gelu", x, {&w1, &b1, &w2, &b2});
  int64_t d = w1.size(1), hidden = w1.size(0), rows = x.numel() / std::max<int64_t>(d, 1);
  auto batch1 = [](const Tensor& t, int64_t r, int64_t c) { return t.detach().contiguous().view({1, r, c}); };
  Tensor y = mlp_gelu_batched(batch1(x, rows, d), batch1(w1, hidden, d), batch1(b1, 1, hidden), batch1(w2, d, hidden),
                              batch1(b2, 1, d), WeightLayout::kOutIn, x, {w1, b1, w2, b2});
  return y.view(x.shape());  // (.., d)
}

Tensor experts_mlp_gelu(const Tensor& x, const Tensor& w1, const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  MT_CHECK(x.dim() == 3 && w1.dim() == 3 && b1.dim() == 3 && w2.dim() == 3 && b2.dim() == 3 &&
               w1.size(0) == x.size(0) && w1.size(1) == x.size(2) && w2.size(0) == x.size(0) &&
               w2.size(1) == w1.size(2) && w2.size(2) == x.size(2) && b1.shape() == Shape({x.size(0), 1, w1.size(2)}) &&
               b2.shape() == Shape({x.size(0), 1, x.size(2)}),
           "experts_mlp_gelu: expected x (E, C, d), w1 (E, d, hidden), b1 (E, 1, hidden), w2 (E, hidden, d), b2 (E, 1, "
           "d), got ", x.describe(), ", ", w1.describe(), ", ", b1.describe(), ", ", w2.describe(), ", ", b2.describe());
  check_mlp_operands("experts_mlp_gelu", x, {&w1, &b1, &w2, &b2});
  auto c = [](const Tensor& t) { return t.detach().contiguous(); };
  return mlp_gelu_batched(c(x), c(w1), c(b1), c(w2), c(b2), WeightLayout::kInOut, x, {w1, b1, w2, b2});
}

// Note [Packed dropless buffer]: dropless routing on one rank gives each expert the rows routed to it,
// expert after expert (mt/nn/moe_routing.h), instead of padding every expert to the largest count. The
// experts' MLP then runs one GEMM group per expert sized to its rows, each with the batched op's
// epilogues and the same backward, so padding costs no FLOPs and no memory whatever the routing's skew
// (a padded buffer of an expert that draws every token would be E x larger). On a GPU each expert's rows
// are rounded up to a block of 128 zero-filled rows (as MegaBlocks pads to its block size): whole GEMM
// tiles, and at most S / 128 + 1 distinct row counts, so cuBLASLt's plans (built by a heuristic query on
// a shape's first call, then cached) are reused from step to step instead of queried per expert per
// step; exact counts would add a plan per expert per step and grow the cache without bound. Zero rows
// take no part in the result: combine never reads their output and their output gradient is zero. Under
// expert parallelism the group's capacity (its largest count) is rounded up the same way.
Tensor experts_mlp_gelu_packed(const Tensor& x, const std::vector<int64_t>& expert_rows, const Tensor& w1,
                               const Tensor& b1, const Tensor& w2, const Tensor& b2) {
  const int64_t experts = w1.dim() == 3 ? w1.size(0) : -1;
  MT_CHECK(x.dim() == 2 && experts >= 1 && b1.dim() == 3 && w2.dim() == 3 && b2.dim() == 3 &&
               w1.size(1) == x.size(1) && w2.size(0) == experts && w2.size(1) == w1.size(2) &&
               w2.size(2) == x.size(1) && b1.shape() == Shape({experts, 1, w1.size(2)}) &&
               b2.shape() == Shape({experts, 1, x.size(1)}),
           "experts_mlp_gelu_packed: expected x (N, d), w1 (E, d, hidden), b1 (E, 1, hidden), w2 (E, hidden, d), b2 "
           "(E, 1, d), got ", x.describe(), ", ", w1.describe(), ", ", b1.describe(), ", ", w2.describe(), ", ",
           b2.describe());
  check_mlp_operands("experts_mlp_gelu_packed", x, {&w1, &b1, &w2, &b2});
  MT_CHECK(static_cast<int64_t>(expert_rows.size()) == experts, "experts_mlp_gelu_packed: expected the rows of ",
           experts, " experts, got ", expert_rows.size());
  std::vector<int64_t> first(experts + 1, 0);  // expert e's rows are first[e] .. first[e + 1] - 1
  for (int64_t e = 0; e < experts; ++e) {
    MT_CHECK(expert_rows[e] >= 0, "experts_mlp_gelu_packed: expert ", e, " has ", expert_rows[e], " rows");
    first[e + 1] = first[e] + expert_rows[e];
  }
  MT_CHECK(first[experts] == x.size(0), "experts_mlp_gelu_packed: the experts' rows sum to ", first[experts],
           " but x has ", x.size(0), " rows (", x.describe(), ")");
  const int64_t n = x.size(0), d = x.size(1), hidden = w1.size(2);
  Device dev = x.device();
  DType dt = x.dtype();
  auto c = [](const Tensor& t) { return t.detach().contiguous(); };
  Tensor xc = c(x), w1c = c(w1), b1c = c(b1), w2c = c(w2), b2c = c(b2);
  // Expert e's rows of a packed (N, cols) tensor as (1, rows_e, cols); its slice of an (E, ., .) one.
  auto rows_of = [first](const Tensor& t, int64_t e) {
    return t.narrow(0, first[e], first[e + 1] - first[e]).view({1, first[e + 1] - first[e], t.size(1)});
  };
  auto of_expert = [](const Tensor& t, int64_t e) { return t.narrow(0, e, 1); };
  Tensor pre = Tensor::empty({n, hidden}, dt, dev), h = Tensor::empty({n, hidden}, dt, dev);
  Tensor y = Tensor::empty({n, d}, dt, dev);
  for (int64_t e = 0; e < experts; ++e)
    mlp_gelu_forward(rows_of(xc, e), of_expert(w1c, e), of_expert(b1c, e), of_expert(w2c, e), of_expert(b2c, e),
                     WeightLayout::kInOut, rows_of(pre, e), rows_of(h, e), rows_of(y, e));
  SavedTensor sx(xc, "experts input"), sw1(w1c, "experts fc weight"), sw2(w2c, "experts proj weight");
  SavedTensor spre(pre, "experts pre-activation"), sh(h, "experts activation");
  const MlpGradLayout grad_layout(x, {w1, b1, w2, b2});
  const int64_t most = *std::max_element(expert_rows.begin(), expert_rows.end());
  record_function("PackedMlpGeluBackward", {x, w1, b1, w2, b2}, {y}, [=](const std::vector<Tensor>& g) {
    Tensor dy = g[0].contiguous();  // (N, d)
    MlpGrads grads = grad_layout.empty();
    Tensor ones_rows = shared_ones(most, {dt, dev}).view({1, 1, most});
    const Tensor &xs = sx.get(), &w1s = sw1.get(), &w2s = sw2.get(), &pres = spre.get(), &hs = sh.get();
    for (int64_t e = 0; e < experts; ++e) {
      MlpGrads expert_grads{grads.x.defined() ? rows_of(grads.x, e) : Tensor(), of_expert(grads.w1, e),
                            of_expert(grads.b1, e), of_expert(grads.w2, e), of_expert(grads.b2, e)};
      mlp_gelu_backward(rows_of(dy, e), rows_of(xs, e), of_expert(w1s, e), of_expert(w2s, e), rows_of(pres, e),
                        rows_of(hs, e), WeightLayout::kInOut, ones_rows.narrow(2, 0, first[e + 1] - first[e]),
                        expert_grads);
    }
    return std::vector<Tensor>{grads.x, grads.w1, grads.b1, grads.w2, grads.b2};
  });
  return y;  // (N, d)
}

}  // namespace mt
