// CPU loop helpers: OpenMP parallel ranges and strided N-d iteration over up to three tensors
// with the same shape (innermost dimension as a tight loop).
#pragma once
#include <cstdint>
#include <vector>

#include "mt/core/tensor.h"

namespace mt::cpu {

// fn(begin, end) over [0, n) split across threads when n is large enough.
template <typename Fn>
void parallel_range(int64_t n, int64_t grain, Fn&& fn) {
  if (n <= grain) {
    fn(int64_t{0}, n);
    return;
  }
  int64_t chunks = (n + grain - 1) / grain;
#pragma omp parallel for schedule(static)
  for (int64_t c = 0; c < chunks; ++c) fn(c * grain, std::min(n, (c + 1) * grain));
}

// Calls fn(offsets...) — element offsets (in elements, from each tensor's data pointer) —
// for every index of `shape`, in row-major order.
template <size_t N, typename Fn>
void for_each_strided(const Shape& shape, const std::array<const Shape*, N>& strides, Fn&& fn) {
  int nd = shape.dim();
  int64_t total = shape.numel();
  if (total == 0) return;
  if (nd == 0) {
    std::array<int64_t, N> off{};
    fn(off);
    return;
  }
  int64_t inner = shape[nd - 1];
  int64_t outer = total / inner;
  parallel_range(outer, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t lo, int64_t hi) {
    std::vector<int64_t> idx(nd, 0);
    for (int64_t o = lo; o < hi; ++o) {
      int64_t rem = o;
      for (int d = nd - 2; d >= 0; --d) {
        idx[d] = rem % shape[d];
        rem /= shape[d];
      }
      std::array<int64_t, N> base{};
      for (size_t t = 0; t < N; ++t)
        for (int d = 0; d < nd - 1; ++d) base[t] += idx[d] * (*strides[t])[d];
      std::array<int64_t, N> off;
      for (int64_t i = 0; i < inner; ++i) {
        for (size_t t = 0; t < N; ++t) off[t] = base[t] + i * (*strides[t])[nd - 1];
        fn(off);
      }
    }
  });
}

}  // namespace mt::cpu
