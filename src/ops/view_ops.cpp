// Differentiable views: each shares storage with its input and records how to map the
// gradient back (reshape it, transpose it back, pad it into the narrowed range, sum the expansion).
#include <numeric>

#include "mt/graph/node.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

Tensor with_layout(const Tensor& t, const Shape& shape, const Shape& strides, int64_t offset) {
  return Tensor::make_view(t.storage(), shape, strides, offset, t.dtype());
}

// Strides for viewing `t` as `shape` without copying, if its layout allows (PyTorch's rule).
bool view_strides(const Tensor& t, const Shape& shape, Shape& out) {
  out = Shape(shape.size());
  if (t.numel() == 0 || t.is_contiguous()) {
    out = contiguous_strides(shape);
    return true;
  }
  int64_t view_d = shape.dim() - 1;
  int64_t chunk_base_stride = t.strides().empty() ? 1 : t.strides().back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int64_t td = t.dim() - 1; td >= 0; --td) {
    tensor_numel *= t.shape()[td];
    if (td == 0 || (t.shape()[td - 1] != 1 && t.strides()[td - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        out[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return false;
      if (td > 0) {
        chunk_base_stride = t.strides()[td - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  return view_d == -1;
}

Shape infer_shape(const Shape& shape, int64_t numel, const Tensor& t) {
  Shape s = shape;
  int infer = -1;
  int64_t known = 1;
  for (int i = 0; i < s.dim(); ++i) {
    if (s[i] == -1) {
      MT_CHECK(infer < 0, "view: only one dimension can be -1, got ", shape);
      infer = i;
    } else {
      known *= s[i];
    }
  }
  if (infer >= 0) {
    MT_CHECK(known > 0 && numel % known == 0, "view: shape ", shape, " is invalid for ", t.describe());
    s[infer] = numel / known;
  }
  MT_CHECK(s.numel() == numel, "view: shape ", shape, " is invalid for ", t.describe());
  return s;
}

Tensor record_reshape_like(const char* name, const Tensor& in, const Tensor& out) {
  Shape in_shape = in.shape();
  record_function(name, {in}, {out},
                  [in_shape](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0].reshape(in_shape)}; });
  return out;
}

}  // namespace

Tensor Tensor::view(const Shape& shape) const {
  Shape s = infer_shape(shape, numel(), *this);
  Shape st;
  MT_CHECK(view_strides(*this, s, st), "view: ", describe(), " with strides ", strides(),
           " cannot be viewed as ", s, "; use reshape");
  return record_reshape_like("ViewBackward", *this, with_layout(*this, s, st, offset()));
}

Tensor Tensor::reshape(const Shape& shape) const {
  Shape s = infer_shape(shape, numel(), *this);
  Shape st;
  if (view_strides(*this, s, st)) return record_reshape_like("ViewBackward", *this, with_layout(*this, s, st, offset()));
  return contiguous().view(s);
}

Tensor Tensor::flatten(int start_dim, int end_dim) const {
  if (dim() == 0) return reshape({1});
  int s = wrap_dim(start_dim, dim(), "flatten"), e = wrap_dim(end_dim, dim(), "flatten");
  Shape out;
  for (int i = 0; i < s; ++i) out.push_back(shape()[i]);
  int64_t m = 1;
  for (int i = s; i <= e; ++i) m *= shape()[i];
  out.push_back(m);
  for (int i = e + 1; i < dim(); ++i) out.push_back(shape()[i]);
  return reshape(out);
}

Tensor Tensor::permute(const std::vector<int>& dims) const {
  MT_CHECK(static_cast<int>(dims.size()) == dim(), "permute: ", dims.size(), " dims given for ", describe());
  Shape s(dim()), st(dim());
  std::vector<int> inverse(dim(), -1);
  for (int i = 0; i < dim(); ++i) {
    int d = wrap_dim(dims[i], dim(), "permute");
    MT_CHECK(inverse[d] < 0, "permute: dim ", d, " repeated");
    inverse[d] = i;
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  Tensor out = with_layout(*this, s, st, offset());
  record_function("PermuteBackward", {*this}, {out},
                  [inverse](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0].permute(inverse)}; });
  return out;
}

Tensor Tensor::transpose(int d0, int d1) const {
  std::vector<int> p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, dim(), "transpose")], p[wrap_dim(d1, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::narrow(int d, int64_t start, int64_t length) const {
  d = wrap_dim(d, dim(), "narrow");
  if (start < 0) start += shape()[d];
  MT_CHECK(start >= 0 && length >= 0 && start + length <= shape()[d], "narrow: range [", start, ", ", start + length,
           ") out of bounds for dim ", d, " of ", describe());
  Shape s = shape();
  s[d] = length;
  Tensor out = with_layout(*this, s, strides(), offset() + start * strides()[d]);
  Shape in_shape = shape();
  DType dt = dtype();
  record_function("NarrowBackward", {*this}, {out}, [in_shape, dt, d, start, length](const std::vector<Tensor>& g) {
    Tensor full = zeros(in_shape, {dt, g[0].device()});
    full.narrow(d, start, length).copy_(g[0]);
    return std::vector<Tensor>{full};
  });
  return out;
}

Tensor Tensor::select(int d, int64_t index) const {
  d = wrap_dim(d, dim(), "select");
  if (index < 0) index += shape()[d];
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::unsqueeze(int d) const {
  d = wrap_dim(d, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::squeeze(int d) const {
  d = wrap_dim(d, dim(), "squeeze");
  MT_CHECK(shape()[d] == 1, "squeeze: dim ", d, " of ", describe(), " is not 1");
  Shape s = shape();
  s.erase(s.begin() + d);
  return view(s);
}

Tensor Tensor::expand(const Shape& shape) const {
  MT_CHECK(shape.dim() >= dim(), "expand: cannot expand ", describe(), " to fewer dims ", shape);
  Shape st(shape.dim(), 0);
  int lead = shape.dim() - dim();
  for (int i = 0; i < shape.dim(); ++i) {
    if (i < lead) continue;
    int64_t have = this->shape()[i - lead];
    MT_CHECK(have == shape[i] || have == 1, "expand: cannot expand ", describe(), " to ", shape);
    st[i] = have == shape[i] ? strides()[i - lead] : 0;
  }
  if (shape == this->shape()) return *this;
  Tensor out = with_layout(*this, shape, st, offset());
  Shape in_shape = this->shape();
  record_function("ExpandBackward", {*this}, {out},
                  [in_shape](const std::vector<Tensor>& g) { return std::vector<Tensor>{sum_to_shape(g[0], in_shape)}; });
  return out;
}

}  // namespace mt
