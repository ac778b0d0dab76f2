// Shape and strides (in elements), with the helpers every view and kernel needs.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <ostream>
#include <vector>

namespace mt {

class Shape : public std::vector<int64_t> {
 public:
  using std::vector<int64_t>::vector;
  Shape(const std::vector<int64_t>& v) : std::vector<int64_t>(v) {}
  int64_t numel() const;
  int dim() const { return static_cast<int>(size()); }
};

std::ostream& operator<<(std::ostream& os, const Shape& s);
Shape contiguous_strides(const Shape& shape);
// Wraps a possibly negative dim into [0, ndim); the error names `op`.
int wrap_dim(int dim, int ndim, const char* op);
// The broadcast of two shapes (numpy rules); the error names both shapes.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

}  // namespace mt
