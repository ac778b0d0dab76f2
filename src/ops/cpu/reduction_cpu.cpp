// CPU row reductions: in (M, K) -> out (M); rows in parallel, each row summed in order
// (deterministic), accumulating in f32 for half types and f64 for f64.
#include <cmath>
#include <limits>

#include "cpu_kernels.h"
#include "cpu_loops.h"

namespace mt::cpu {

void reduce_rows(ReduceOp op, const Tensor& in, const Tensor& out) {
  int64_t m = in.size(0), k = in.size(1);
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("reduction over a bool tensor: cast it first");
    } else {
      using A = std::conditional_t<std::is_same_v<T, double>, double,
                                   std::conditional_t<std::is_integral_v<T>, int64_t, float>>;
      const T* x = in.data<T>();
      parallel_range(m, std::max<int64_t>(1, 8192 / std::max<int64_t>(k, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          const T* row = x + r * k;
          if (op == ReduceOp::kArgMax) {
            int64_t best = 0;
            for (int64_t j = 1; j < k; ++j)
              if (static_cast<A>(row[j]) > static_cast<A>(row[best])) best = j;
            out.data<int64_t>()[r] = best;
          } else if (op == ReduceOp::kMax || op == ReduceOp::kMin) {
            A v = static_cast<A>(row[0]);
            for (int64_t j = 1; j < k; ++j) {
              A e = static_cast<A>(row[j]);
              v = op == ReduceOp::kMax ? (e > v ? e : v) : (e < v ? e : v);
            }
            out.data<T>()[r] = static_cast<T>(v);
          } else {
            A s = 0;
            for (int64_t j = 0; j < k; ++j) {
              A e = static_cast<A>(row[j]);
              s += op == ReduceOp::kSumSquares ? e * e : e;
            }
            out.data<T>()[r] = static_cast<T>(s);
          }
        }
      });
    }
  });
}

void sum_squares_many(const std::vector<Tensor>& tensors, const Tensor& out) {
  // Each tensor summed in order (deterministic), tensors in parallel.
  parallel_range(static_cast<int64_t>(tensors.size()), 1, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) {
      const Tensor& t = tensors[i];
      dispatch_floating(t.dtype(), "sum_squares_many", [&]<typename T>() {
        using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
        const T* x = t.data<T>();
        A s = 0;
        for (int64_t j = 0; j < t.numel(); ++j) s += static_cast<A>(x[j]) * static_cast<A>(x[j]);
        out.data<A>()[i] = s;
      });
    }
  });
}

}  // namespace mt::cpu
