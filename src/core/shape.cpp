// Shape helpers: element counts, contiguous strides, dim wrapping and broadcasting.
#include "mt/core/shape.h"

#include "mt/core/error.h"

namespace mt {

int64_t Shape::numel() const {
  int64_t n = 1;
  for (int64_t d : *this) n *= d;
  return n;
}

std::ostream& operator<<(std::ostream& os, const Shape& s) {
  os << '[';
  for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
  return os << ']';
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int i = shape.dim() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

int wrap_dim(int dim, int ndim, const char* op) {
  int d = dim < 0 ? dim + ndim : dim;
  MT_CHECK(d >= 0 && d < std::max(ndim, 1), op, ": dim ", dim, " out of range for a tensor with ", ndim, " dims");
  return d;
}

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  int n = std::max(a.dim(), b.dim());
  Shape out(n);
  for (int i = 0; i < n; ++i) {
    int64_t da = i < n - a.dim() ? 1 : a[i - (n - a.dim())];
    int64_t db = i < n - b.dim() ? 1 : b[i - (n - b.dim())];
    MT_CHECK(da == db || da == 1 || db == 1, op, ": shapes ", a, " and ", b, " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

}  // namespace mt
