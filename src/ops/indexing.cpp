// Indexing and shape ops: index_select/index_add (rows along a dim), gather/scatter_add,
// topk, cumsum, cat/split/stack. Index tensors are converted to i64 once here.
#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

Tensor as_index(const Tensor& index, const char* op) {
  MT_CHECK(index.dtype() == DType::kI64 || index.dtype() == DType::kI32, op, ": index must be i32 or i64, got ",
           index.describe());
  return index.detach().to(DType::kI64).contiguous();
}

struct RowsView {
  int64_t outer = 1, n = 1, inner = 1;
};

RowsView rows_view(const Shape& s, int dim) {
  RowsView r;
  for (int i = 0; i < dim; ++i) r.outer *= s[i];
  r.n = s[dim];
  for (int i = dim + 1; i < s.dim(); ++i) r.inner *= s[i];
  return r;
}

}  // namespace

Tensor index_select(const Tensor& a, int dim, const Tensor& index) {
  dim = wrap_dim(dim, a.dim(), "index_select");
  MT_CHECK(index.dim() == 1, "index_select: index must be 1-d, got ", index.describe());
  check_same_device("index_select", a, index);
  Tensor idx = as_index(index, "index_select");
  RowsView r = rows_view(a.shape(), dim);
  Shape out_shape = a.shape();
  out_shape[dim] = idx.numel();
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (out.numel() > 0) kernels().index_select.get(a.device(), "index_select")(a.detach().contiguous(), r.outer, r.n, r.inner, idx, out);
  Shape in_shape = a.shape();
  DType dt = a.dtype();
  // The selected rows' gradients added into a gradient a has already received (the tied embedding's,
  // from the LM head: Note [Gradients added in place] in src/autograd/engine.cpp), widened to its dtype;
  // or else into zeros this node owns (index_add would copy them first: for GPT-2's embedding a (50304,
  // 768) copy each step).
  auto add_rows = [in_shape, dt, r, idx](const std::vector<Tensor>& g, const Tensor& sum) {
    const bool wide_enough =
        sum.dtype() == dt || (is_floating(sum.dtype()) && dtype_size(sum.dtype()) > dtype_size(dt));
    if (sum.shape() != in_shape || !wide_enough || !sum.is_contiguous()) return false;
    if (g[0].numel() > 0)
      kernels().index_add.get(sum.device(), "index_select backward")(sum, r.outer, r.n, r.inner, idx,
                                                                      g[0].to(sum.dtype()).contiguous());
    return true;
  };
  record_function(
      "IndexSelectBackward", {a}, {out},
      [in_shape, dt, add_rows](const std::vector<Tensor>& g) {
        Tensor grad = zeros(in_shape, {dt, g[0].device()});
        add_rows(g, grad);
        return std::vector<Tensor>{grad};
      },
      add_rows);
  return out;
}

Tensor index_add(const Tensor& a, int dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, a.dim(), "index_add");
  check_same_dtype("index_add", a, src);
  check_same_device("index_add", a, src);
  Tensor idx = as_index(index, "index_add");
  Shape expect = a.shape();
  expect[dim] = idx.numel();
  MT_CHECK(src.shape() == expect, "index_add: src shape ", src.shape(), " does not match ", expect);
  RowsView r = rows_view(a.shape(), dim);
  Tensor out = a.detach().clone();
  if (src.numel() > 0) kernels().index_add.get(a.device(), "index_add")(out, r.outer, r.n, r.inner, idx, src.detach().contiguous());
  record_function("IndexAddBackward", {a, src}, {out}, [dim, idx](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0], index_select(g[0], dim, idx)};
  });
  return out;
}

Tensor gather(const Tensor& a, int dim, const Tensor& index) {
  dim = wrap_dim(dim, a.dim(), "gather");
  MT_CHECK(index.dim() == a.dim(), "gather: index ", index.describe(), " must have as many dims as ", a.describe());
  check_same_device("gather", a, index);
  Tensor idx = as_index(index, "gather");
  Tensor out = Tensor::empty(idx.shape(), a.dtype(), a.device());
  if (out.numel() > 0) kernels().gather.get(a.device(), "gather")(a.detach().contiguous(), dim, idx, out);
  Shape in_shape = a.shape();
  DType dt = a.dtype();
  record_function("GatherBackward", {a}, {out}, [in_shape, dt, dim, idx](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{scatter_add(zeros(in_shape, {dt, g[0].device()}), dim, idx, g[0])};
  });
  return out;
}

Tensor scatter_add(const Tensor& a, int dim, const Tensor& index, const Tensor& src) {
  dim = wrap_dim(dim, a.dim(), "scatter_add");
  check_same_dtype("scatter_add", a, src);
  check_same_device("scatter_add", a, src);
  Tensor idx = as_index(index, "scatter_add");
  MT_CHECK(idx.shape() == src.shape(), "scatter_add: index shape ", idx.shape(), " differs from src shape ", src.shape());
  Tensor out = a.detach().clone();
  if (src.numel() > 0) kernels().scatter_add.get(a.device(), "scatter_add")(out, dim, idx, src.detach().contiguous());
  record_function("ScatterAddBackward", {a, src}, {out}, [dim, idx](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{g[0], gather(g[0], dim, idx)};
  });
  return out;
}

std::pair<Tensor, Tensor> topk(const Tensor& a, int64_t k, int dim) {
  dim = wrap_dim(dim, a.dim(), "topk");
  MT_CHECK(k >= 1 && k <= a.size(dim), "topk: k = ", k, " out of range for dim ", dim, " of ", a.describe());
  Tensor moved = a.detach().transpose(dim, -1).contiguous();
  int64_t n = moved.size(-1);
  Tensor rows = moved.reshape({-1, n});
  Tensor values = Tensor::empty({rows.size(0), k}, a.dtype(), a.device());
  Tensor indices = Tensor::empty({rows.size(0), k}, DType::kI64, a.device());
  if (values.numel() > 0) kernels().topk.get(a.device(), "topk")(rows, k, values, indices);
  Shape moved_shape = moved.shape();
  moved_shape.back() = k;
  Tensor idx = indices.view(moved_shape).transpose(dim, -1).contiguous();
  Tensor vals = values.view(moved_shape).transpose(dim, -1).contiguous();
  Shape in_shape = a.shape();
  DType dt = a.dtype();
  record_function("TopKBackward", {a}, {vals}, [in_shape, dt, dim, idx](const std::vector<Tensor>& g) {
    return std::vector<Tensor>{scatter_add(zeros(in_shape, {dt, g[0].device()}), dim, idx, g[0])};
  });
  return {vals, idx};
}

Tensor cumsum(const Tensor& a, int dim) {
  dim = wrap_dim(dim, a.dim(), "cumsum");
  Tensor moved = a.detach().transpose(dim, -1).contiguous();
  int64_t n = a.dim() == 0 ? 1 : moved.size(-1);
  Tensor out = Tensor::empty(moved.shape(), a.dtype(), a.device());
  if (out.numel() > 0) kernels().cumsum.get(a.device(), "cumsum")(moved.reshape({-1, n}), out.view({-1, n}));
  Tensor result = a.dim() == 0 ? out : out.transpose(dim, -1).contiguous();
  record_function("CumsumBackward", {a}, {result}, [dim](const std::vector<Tensor>& g) {
    // Reverse cumulative sum: flip, cumsum, flip — done as total - cumsum + g.
    Tensor c = cumsum(g[0], dim);
    Tensor total = sum(g[0], {dim}, true);
    return std::vector<Tensor>{add(sub(total.expand(g[0].shape()), c), g[0])};
  });
  return result;
}

Tensor cat(const std::vector<Tensor>& tensors, int dim) {
  MT_CHECK(!tensors.empty(), "cat: no tensors given");
  const Tensor& first = tensors[0];
  dim = wrap_dim(dim, first.dim(), "cat");
  Shape shape = first.shape();
  int64_t total = 0;
  for (const Tensor& t : tensors) {
    check_same_device("cat", first, t);
    check_same_dtype("cat", first, t);
    MT_CHECK(t.dim() == first.dim(), "cat: ", t.describe(), " and ", first.describe(), " differ in rank");
    for (int d = 0; d < t.dim(); ++d)
      MT_CHECK(d == dim || t.shape()[d] == shape[d], "cat: shapes ", first.shape(), " and ", t.shape(),
               " differ outside dim ", dim);
    total += t.shape()[dim];
  }
  shape[dim] = total;
  Tensor out = Tensor::empty(shape, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  {
    NoGradGuard ng;
    int64_t at = 0;
    for (const Tensor& t : tensors) {
      if (t.shape()[dim] > 0) out.narrow(dim, at, t.shape()[dim]).copy_(t);
      at += t.shape()[dim];
      sizes.push_back(t.shape()[dim]);
    }
  }
  record_function("CatBackward", tensors, {out}, [sizes, dim](const std::vector<Tensor>& g) {
    std::vector<Tensor> grads;
    int64_t at = 0;
    for (int64_t s : sizes) {
      grads.push_back(g[0].narrow(dim, at, s).contiguous());
      at += s;
    }
    return grads;
  });
  return out;
}

std::vector<Tensor> split(const Tensor& a, const std::vector<int64_t>& sizes, int dim) {
  dim = wrap_dim(dim, a.dim(), "split");
  int64_t total = 0;
  for (int64_t s : sizes) total += s;
  MT_CHECK(total == a.size(dim), "split: sizes sum to ", total, " but dim ", dim, " of ", a.describe(), " is ",
           a.size(dim));
  std::vector<Tensor> out;
  int64_t at = 0;
  for (int64_t s : sizes) {
    out.push_back(a.narrow(dim, at, s));
    at += s;
  }
  return out;
}

std::vector<Tensor> split(const Tensor& a, int64_t split_size, int dim) {
  MT_CHECK(split_size > 0, "split: split_size must be positive, got ", split_size);
  int64_t n = a.size(dim);
  std::vector<int64_t> sizes;
  for (int64_t at = 0; at < n; at += split_size) sizes.push_back(std::min(split_size, n - at));
  return split(a, sizes, dim);
}

Tensor stack(const std::vector<Tensor>& tensors, int dim) {
  MT_CHECK(!tensors.empty(), "stack: no tensors given");
  dim = wrap_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (const Tensor& t : tensors) {
    check_same_shape("stack", tensors[0], t);
    expanded.push_back(t.unsqueeze(dim));
  }
  return cat(expanded, dim);
}

}  // namespace mt
