// Elementwise ops: unary math, broadcasting binary ops, comparisons, where and casts,
// each with its backward next to its forward.
#include <string>
#include <vector>

#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

bool is_comparison(BinaryOp op) { return op >= BinaryOp::kEq; }

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::kAdd: return "add";
    case BinaryOp::kSub: return "sub";
    case BinaryOp::kMul: return "mul";
    case BinaryOp::kDiv: return "div";
    case BinaryOp::kPow: return "pow";
    case BinaryOp::kMax: return "maximum";
    case BinaryOp::kMin: return "minimum";
    case BinaryOp::kEq: return "eq";
    case BinaryOp::kNe: return "ne";
    case BinaryOp::kLt: return "lt";
    case BinaryOp::kLe: return "le";
    case BinaryOp::kGt: return "gt";
    case BinaryOp::kGe: return "ge";
  }
  return "?";
}

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  const char* name = binary_name(op);
  check_same_device(name, a, b);
  check_same_dtype(name, a, b);
  Shape shape = broadcast_shapes(a.shape(), b.shape(), name);
  Tensor out = Tensor::empty(shape, is_comparison(op) ? DType::kBool : a.dtype(), a.device());
  if (out.numel() > 0) kernels().binary.get(a.device(), name)(op, a.detach().expand(shape), b.detach().expand(shape), out);
  return out;
}

Tensor unary_forward(UnaryOp op, const Tensor& a, double alpha, const char* name) {
  Tensor in = a.detach().contiguous();
  Tensor out = Tensor::empty(a.shape(), a.dtype(), a.device());
  if (out.numel() > 0) kernels().unary.get(a.device(), name)(op, in, out, alpha);
  return out;
}

Tensor unary_grad(UnaryGradOp op, const Tensor& g, const Tensor& x) {
  Tensor gin = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (gin.numel() > 0) kernels().unary_backward.get(x.device(), "unary_backward")(op, g.contiguous(), x.contiguous(), gin);
  return gin;
}

// Unary op whose backward is grad * f'(x), computed by the unary_backward kernel.
Tensor unary_with_kernel_grad(UnaryOp op, UnaryGradOp gop, const Tensor& a, const char* name, const char* node) {
  MT_CHECK(is_floating(a.dtype()), name, ": expected a floating tensor, got ", a.describe());
  Tensor out = unary_forward(op, a, 0.0, name);
  SavedTensor x(a, "input");
  record_function(node, {a}, {out}, [x, gop](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{unary_grad(gop, g[0], x.get())};
  });
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kAdd, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record_function("AddBackward", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{sum_to_shape(g[0], sa), sum_to_shape(g[0], sb)};
  });
  return out;
}

Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kSub, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record_function("SubBackward", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{sum_to_shape(g[0], sa), sum_to_shape(neg(g[0]), sb)};
  });
  return out;
}

Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kMul, a, b);
  SavedTensor sa(a, "mul input a"), sb(b, "mul input b");
  record_function("MulBackward", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) {
    const Tensor& x = sa.get();
    const Tensor& y = sb.get();
    return std::vector<Tensor>{sum_to_shape(mul(g[0], y), x.shape()), sum_to_shape(mul(g[0], x), y.shape())};
  });
  return out;
}

Tensor div(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kDiv, a, b);
  SavedTensor sa(a, "div input a"), sb(b, "div input b");
  record_function("DivBackward", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) {
    const Tensor& x = sa.get();
    const Tensor& y = sb.get();
    Tensor ga = div(g[0], y);
    Tensor gb = neg(mul(ga, div(x, y)));
    return std::vector<Tensor>{sum_to_shape(ga, x.shape()), sum_to_shape(gb, y.shape())};
  });
  return out;
}

Tensor pow(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kPow, a, b);
  SavedTensor sa(a, "pow base"), sb(b, "pow exponent"), so(out, "pow output");
  record_function("PowBackward", {a, b}, {out}, [sa, sb, so](const std::vector<Tensor>& g) {
    const Tensor& x = sa.get();
    const Tensor& y = sb.get();
    Tensor ga = mul(g[0], mul(y, pow(x, sub(y, ones_like(y)))));
    Tensor gb = mul(g[0], mul(so.get(), log(x)));
    return std::vector<Tensor>{sum_to_shape(ga, x.shape()), sum_to_shape(gb, y.shape())};
  });
  return out;
}

Tensor maximum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kMax, a, b);
  SavedTensor sa(a, "maximum input a"), sb(b, "maximum input b");
  record_function("MaximumBackward", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) {
    Tensor take_a = ge(sa.get(), sb.get());  // ties go to a
    Tensor zero = zeros({}, {g[0].dtype(), g[0].device()});
    return std::vector<Tensor>{sum_to_shape(where(take_a, g[0], zero), sa.get().shape()),
                               sum_to_shape(where(take_a, zero, g[0]), sb.get().shape())};
  });
  return out;
}

Tensor minimum(const Tensor& a, const Tensor& b) {
  Tensor out = binary_forward(BinaryOp::kMin, a, b);
  SavedTensor sa(a, "minimum input a"), sb(b, "minimum input b");
  record_function("MinimumBackward", {a, b}, {out}, [sa, sb](const std::vector<Tensor>& g) {
    Tensor take_a = le(sa.get(), sb.get());
    Tensor zero = zeros({}, {g[0].dtype(), g[0].device()});
    return std::vector<Tensor>{sum_to_shape(where(take_a, g[0], zero), sa.get().shape()),
                               sum_to_shape(where(take_a, zero, g[0]), sb.get().shape())};
  });
  return out;
}

Tensor eq(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::kEq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::kNe, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::kLt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::kLe, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::kGt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return binary_forward(BinaryOp::kGe, a, b); }

Tensor add(const Tensor& a, double s) {
  Tensor out = unary_forward(UnaryOp::kAddScalar, a, s, "add");
  record_function("AddScalarBackward", {a}, {out}, [](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0]}; });
  return out;
}

Tensor mul(const Tensor& a, double s) {
  Tensor out = unary_forward(UnaryOp::kScale, a, s, "mul");
  record_function("MulScalarBackward", {a}, {out}, [s](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(g[0], s)};
  });
  return out;
}

Tensor pow(const Tensor& a, double p) {
  Tensor out = unary_forward(UnaryOp::kPow, a, p, "pow");
  SavedTensor x(a, "pow base");
  record_function("PowScalarBackward", {a}, {out}, [x, p](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(mul(g[0], pow(x.get(), p - 1.0)), p)};
  });
  return out;
}

Tensor neg(const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::kNeg, a, 0.0, "neg");
  record_function("NegBackward", {a}, {out}, [](const std::vector<Tensor>& g) { return std::vector<Tensor>{neg(g[0])}; });
  return out;
}

Tensor exp(const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::kExp, a, 0.0, "exp");
  SavedTensor y(out, "exp output");
  record_function("ExpBackward", {a}, {out}, [y](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(g[0], y.get())};
  });
  return out;
}

Tensor log(const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::kLog, a, 0.0, "log");
  SavedTensor x(a, "log input");
  record_function("LogBackward", {a}, {out}, [x](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{div(g[0], x.get())};
  });
  return out;
}

Tensor sqrt(const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::kSqrt, a, 0.0, "sqrt");
  SavedTensor y(out, "sqrt output");
  record_function("SqrtBackward", {a}, {out}, [y](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(div(g[0], y.get()), 0.5)};
  });
  return out;
}

Tensor rsqrt(const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::kRsqrt, a, 0.0, "rsqrt");
  SavedTensor y(out, "rsqrt output");
  record_function("RsqrtBackward", {a}, {out}, [y](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{mul(mul(g[0], pow(y.get(), 3.0)), -0.5)};
  });
  return out;
}

Tensor abs(const Tensor& a) {
  Tensor out = unary_forward(UnaryOp::kAbs, a, 0.0, "abs");
  SavedTensor x(a, "abs input");
  record_function("AbsBackward", {a}, {out}, [x](const std::vector<Tensor>& g) {
    Tensor zero = zeros({}, {g[0].dtype(), g[0].device()});
    Tensor pos = gt(x.get(), zero), negv = lt(x.get(), zero);
    return std::vector<Tensor>{where(pos, g[0], where(negv, neg(g[0]), zero))};
  });
  return out;
}

Tensor tanh(const Tensor& a) { return unary_with_kernel_grad(UnaryOp::kTanh, UnaryGradOp::kTanh, a, "tanh", "TanhBackward"); }
Tensor relu(const Tensor& a) { return unary_with_kernel_grad(UnaryOp::kRelu, UnaryGradOp::kRelu, a, "relu", "ReluBackward"); }
Tensor gelu(const Tensor& a) { return unary_with_kernel_grad(UnaryOp::kGelu, UnaryGradOp::kGelu, a, "gelu", "GeluBackward"); }
Tensor silu(const Tensor& a) { return unary_with_kernel_grad(UnaryOp::kSilu, UnaryGradOp::kSilu, a, "silu", "SiluBackward"); }
Tensor sigmoid(const Tensor& a) {
  return unary_with_kernel_grad(UnaryOp::kSigmoid, UnaryGradOp::kSigmoid, a, "sigmoid", "SigmoidBackward");
}

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  MT_CHECK(cond.dtype() == DType::kBool, "where: condition must be bool, got ", cond.describe());
  check_same_device("where", cond, a);
  check_same_device("where", a, b);
  check_same_dtype("where", a, b);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  if (out.numel() > 0)
    kernels().where.get(a.device(), "where")(cond.expand(shape), a.detach().expand(shape), b.detach().expand(shape), out);
  Tensor c = cond.detach();
  Shape sa = a.shape(), sb = b.shape();
  record_function("WhereBackward", {a, b}, {out}, [c, sa, sb](const std::vector<Tensor>& g) {
    Tensor zero = zeros({}, {g[0].dtype(), g[0].device()});
    return std::vector<Tensor>{sum_to_shape(where(c, g[0], zero), sa), sum_to_shape(where(c, zero, g[0]), sb)};
  });
  return out;
}

namespace {

// "cast bf16->f32": a profile names each direction apart. One table of every pair, built once (the
// names outlive every call), so a cast pays one index, not a lookup.
const char* cast_name(DType from, DType to) {
#define MT_COUNT_DTYPE(e, t, n) +1
  constexpr int kTypes = 0 MT_FORALL_DTYPES(MT_COUNT_DTYPE);
#undef MT_COUNT_DTYPE
  static const std::vector<std::string> names = [] {
    std::vector<std::string> n;
    for (int f = 0; f < kTypes; ++f)
      for (int t = 0; t < kTypes; ++t)
        n.push_back(str_cat("cast ", dtype_name(static_cast<DType>(f)), "->", dtype_name(static_cast<DType>(t))));
    return n;
  }();
  return names[static_cast<size_t>(from) * kTypes + static_cast<size_t>(to)].c_str();
}

}  // namespace

Tensor cast(const Tensor& a, DType dtype) {
  Tensor out = Tensor::empty(a.shape(), dtype, a.device());
  if (out.numel() > 0) kernels().copy.get(a.device(), cast_name(a.dtype(), dtype))(a.detach(), out);
  if (is_floating(dtype) && is_floating(a.dtype())) {
    DType from = a.dtype();
    record_function("CastBackward", {a}, {out}, [from](const std::vector<Tensor>& g) {
      return std::vector<Tensor>{cast(g[0], from)};
    });
  }
  return out;
}

void add_(const Tensor& a, const Tensor& b, double alpha) {
  MT_CHECK(!(grad_mode_enabled() && a.requires_grad()), "add_: in-place update of ", a.describe(),
           " which requires grad; wrap it in NoGradGuard");
  check_same_device("add_", a, b);
  NoGradGuard no_grad;
  Tensor rhs = alpha == 1.0 ? b : mul(b, alpha);
  if (rhs.dtype() != a.dtype()) rhs = rhs.to(a.dtype());
  broadcast_shapes(a.shape(), rhs.shape(), "add_");
  MT_CHECK(broadcast_shapes(a.shape(), rhs.shape(), "add_") == a.shape(), "add_: ", rhs.shape(),
           " does not broadcast to ", a.shape());
  if (a.is_contiguous()) {
    if (a.numel() > 0) kernels().binary.get(a.device(), "add_")(BinaryOp::kAdd, a.detach(), rhs.expand(a.shape()), a.detach());
  } else {
    a.detach().copy_(add(a.detach(), rhs));
  }
  a.bump_version();
}

void mul_(const Tensor& a, double s) {
  MT_CHECK(!(grad_mode_enabled() && a.requires_grad()), "mul_: in-place update of ", a.describe(),
           " which requires grad; wrap it in NoGradGuard");
  MT_CHECK(a.is_contiguous(), "mul_: expected a contiguous tensor, got strides ", a.strides());
  if (a.numel() > 0) kernels().unary.get(a.device(), "mul_")(UnaryOp::kScale, a.detach(), a.detach(), s);
  a.bump_version();
}

}  // namespace mt
