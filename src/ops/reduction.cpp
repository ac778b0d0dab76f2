// Reductions along dims: the reduced dims are moved last and flattened so one row-reduction
// kernel serves sum, mean, max, min and argmax; backward broadcasts the gradient back.
#include <algorithm>

#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

// The shapes of a reduction: which dims stay, and the order that puts the reduced ones last.
struct ReducePlan {
  std::vector<int> perm;  // kept dims, then reduced dims
  int64_t m = 1, k = 1;   // rows (kept elements) and row length (reduced elements)
  bool leading = true;    // the reduced dims come first: the input is already (K, M) rows
  Shape out_shape;        // kept dims (keepdim applied)
  Shape kept_shape;       // kept dims with reduced dims as 1 (for broadcasting back)
};

ReducePlan plan_reduce(const Tensor& a, std::vector<int> dims, bool keepdim, const char* op) {
  int nd = a.dim();
  std::vector<bool> reduced(nd, false);
  for (int& d : dims) {
    d = wrap_dim(d, nd, op);
    MT_CHECK(!reduced[d], op, ": dim ", d, " listed twice");
    reduced[d] = true;
  }
  ReducePlan p;
  for (int d = 0; d < nd; ++d) {
    if (!reduced[d]) {
      p.perm.push_back(d);
      p.out_shape.push_back(a.shape()[d]);
      p.m *= a.shape()[d];
    } else if (keepdim) {
      p.out_shape.push_back(1);
    }
    p.kept_shape.push_back(reduced[d] ? 1 : a.shape()[d]);
  }
  for (int d = 0; d < nd; ++d)
    if (reduced[d]) {
      p.perm.push_back(d);
      p.k *= a.shape()[d];
    }
  for (int d = 1; d < nd; ++d) p.leading = p.leading && (reduced[d] <= reduced[d - 1]);  // reduced, then kept
  return p;
}

Tensor reduce(ReduceOp op, const Tensor& a, const ReducePlan& p, const char* name) {
  Tensor x = a.detach();
  if (a.dim() > 0) x = x.permute(p.perm);
  Tensor rows = x.contiguous().reshape({p.m, p.k});  // (M, K): a copy unless the reduced dims are last
  DType out_dtype = op == ReduceOp::kArgMax ? DType::kI64 : a.dtype();
  MT_CHECK(p.k > 0 || op == ReduceOp::kSum, name, ": reduction over an empty dimension of ", a.describe());
  Tensor out = Tensor::empty({p.m}, out_dtype, a.device());
  if (out.numel() > 0) kernels().reduce_rows.get(a.device(), name)(op, rows, out);
  return out.view(p.out_shape);
}

Tensor reduce(ReduceOp op, const Tensor& a, const std::vector<int>& dims, bool keepdim, const char* name) {
  return reduce(op, a, plan_reduce(a, dims, keepdim, name), name);
}

std::vector<int> all_dims(const Tensor& a) {
  std::vector<int> d(a.dim());
  for (int i = 0; i < a.dim(); ++i) d[i] = i;
  return d;
}

}  // namespace

Tensor sum(const Tensor& a, const std::vector<int>& dims, bool keepdim) {
  ReducePlan p = plan_reduce(a, dims, keepdim, "sum");
  // A floating sum over the leading dims of a contiguous tensor (the batch of a broadcast's gradient) is
  // ones (1, K) @ rows (K, M): the GEMM reads the rows where they are, where the row reduction would first
  // transpose them, a strided copy of the whole input.
  const bool columns = is_floating(a.dtype()) && a.is_contiguous() && p.k > 1 && p.m > 1 && p.leading;
  Tensor out = columns ? matmul(shared_ones(p.k, {a.dtype(), a.device()}).view({1, p.k}), a.detach().view({p.k, p.m}))
                             .view(p.out_shape)
                       : reduce(ReduceOp::kSum, a, p, "sum");
  Shape in_shape = a.shape(), kept = p.kept_shape;
  record_function("SumBackward", {a}, {out}, [in_shape, kept](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0].reshape(kept).expand(in_shape).contiguous()};
  });
  return out;
}

Tensor sum(const Tensor& a) { return sum(a, all_dims(a), false); }

Tensor mean(const Tensor& a, const std::vector<int>& dims, bool keepdim) {
  int64_t count = 1;
  for (int d : dims) count *= a.shape()[wrap_dim(d, a.dim(), "mean")];
  return mul(sum(a, dims, keepdim), 1.0 / static_cast<double>(std::max<int64_t>(count, 1)));
}

Tensor mean(const Tensor& a) { return mean(a, all_dims(a), false); }

Tensor argmax(const Tensor& a, int dim, bool keepdim) { return reduce(ReduceOp::kArgMax, a, {dim}, keepdim, "argmax"); }

// op: ReduceOp::kMax or ReduceOp::kMin.
static Tensor max_or_min(ReduceOp op, const Tensor& a, int dim, bool keepdim) {
  const bool is_max = op == ReduceOp::kMax;
  const char* name = is_max ? "max" : "min";
  Tensor out = reduce(op, a, {dim}, keepdim, name);
  int d = wrap_dim(dim, a.dim(), name);
  SavedTensor x(a, "max/min input"), y(out, "max/min output");
  record_function(is_max ? "MaxBackward" : "MinBackward", {a}, {out}, [x, y, d, keepdim](const std::vector<Tensor>& g) {
    // Gradient to the first extreme element along dim, as argmax picks it.
    Tensor xv = x.get();
    Tensor yk = keepdim ? y.get() : y.get().unsqueeze(d);
    Tensor gk = keepdim ? g[0] : g[0].unsqueeze(d);
    Tensor hit = eq(xv, yk.expand(xv.shape()));
    Tensor first = eq(cumsum(cast(hit, DType::kI32), d), ones({}, {DType::kI32, xv.device()}));
    Tensor mask = cast(where(first, hit, zeros({}, {DType::kBool, xv.device()})), xv.dtype());
    return std::vector<Tensor>{mul(mask, gk)};
  });
  return out;
}

Tensor max(const Tensor& a, int dim, bool keepdim) { return max_or_min(ReduceOp::kMax, a, dim, keepdim); }
Tensor min(const Tensor& a, int dim, bool keepdim) { return max_or_min(ReduceOp::kMin, a, dim, keepdim); }

Tensor sum_to_shape(const Tensor& a, const Shape& shape) {
  if (a.shape() == shape) return a;
  int lead = a.dim() - shape.dim();
  MT_CHECK(lead >= 0, "sum_to_shape: cannot reduce ", a.shape(), " to ", shape);
  std::vector<int> dims;
  for (int i = 0; i < a.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && a.shape()[i] != 1)) dims.push_back(i);
  Tensor s = dims.empty() ? a : sum(a, dims, true);
  return s.reshape(shape);
}

}  // namespace mt
