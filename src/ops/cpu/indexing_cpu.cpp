// CPU kernels for index_select/index_add (row moves), gather/scatter_add, topk and cumsum.
// index_add sums each destination's sources in index order, then adds them once (as the GPU kernel);
// scatter_add runs serially over the index. Both deterministic.
#include <algorithm>
#include <cstring>
#include <numeric>
#include <type_traits>
#include <vector>

#include "cpu_kernels.h"
#include "cpu_loops.h"

namespace mt::cpu {

namespace {

void check_index(int64_t v, int64_t n, const char* op) {
  MT_CHECK(v >= 0 && v < n, op, ": index ", v, " out of range [0, ", n, ")");
}

}  // namespace

void index_select(const Tensor& in, int64_t outer, int64_t n, int64_t inner, const Tensor& index, const Tensor& out) {
  int64_t m = index.numel();
  const int64_t* idx = index.data<int64_t>();
  for (int64_t j = 0; j < m; ++j) check_index(idx[j], n, "index_select");
  size_t es = in.element_size();
  const char* src = static_cast<const char*>(in.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  parallel_range(outer * m, 64, [&](int64_t lo, int64_t hi) {
    for (int64_t r = lo; r < hi; ++r) {
      int64_t o = r / m, j = r % m;
      std::memcpy(dst + (r * inner) * es, src + ((o * n + idx[j]) * inner) * es, inner * es);
    }
  });
}

// Note [Deterministic index_add] (kernels/indexing.cu), as on the GPU: each destination row gets the sum of its
// source rows, taken in index order in the accumulation type, added to it once. So a destination that already
// holds values (a gradient added into in place, Note [Gradients added in place] in src/autograd/engine.cpp)
// gets exactly what adding the sources into zeros and then adding that would give.
void index_add(const Tensor& out, int64_t outer, int64_t n, int64_t inner, const Tensor& index, const Tensor& src) {
  int64_t m = index.numel();
  const int64_t* idx = index.data<int64_t>();
  for (int64_t j = 0; j < m; ++j) check_index(idx[j], n, "index_add");
  std::vector<int64_t> order(m);  // source rows by destination, each destination's in index order
  std::iota(order.begin(), order.end(), int64_t{0});
  std::stable_sort(order.begin(), order.end(), [idx](int64_t a, int64_t b) { return idx[a] < idx[b]; });
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("index_add: bool tensors are not supported");
    } else {
      using A = std::conditional_t<std::is_integral_v<T>, int64_t, acc_t<T>>;
      T* o = out.data<T>();
      const T* s = src.data<T>();
      parallel_range(outer, 1, [&](int64_t lo, int64_t hi) {
        std::vector<A> sum(inner);
        for (int64_t b = lo; b < hi; ++b)
          for (int64_t p = 0; p < m;) {
            const int64_t row = idx[order[p]];
            std::fill(sum.begin(), sum.end(), A(0));
            for (; p < m && idx[order[p]] == row; ++p) {
              const T* from = s + (b * m + order[p]) * inner;
              for (int64_t i = 0; i < inner; ++i) sum[i] += static_cast<A>(static_cast<acc_t<T>>(from[i]));
            }
            T* dst = o + (b * n + row) * inner;
            for (int64_t i = 0; i < inner; ++i)
              dst[i] = static_cast<T>(static_cast<A>(static_cast<acc_t<T>>(dst[i])) + sum[i]);
          }
      });
    }
  });
}

void gather(const Tensor& in, int dim, const Tensor& index, const Tensor& out) {
  int64_t n = in.shape()[dim];
  const int64_t* idx = index.data<int64_t>();
  int64_t total = index.numel();
  // Map each index element's coordinates to the input (index may be smaller in every dim).
  Shape in_st = in.strides();
  Shape idx_shape = index.shape();
  size_t es = in.element_size();
  const char* src = static_cast<const char*>(in.data_ptr());
  char* dst = static_cast<char*>(out.data_ptr());
  for (int64_t e = 0; e < total; ++e) {
    int64_t rem = e, off = 0;
    for (int d = idx_shape.dim() - 1; d >= 0; --d) {
      int64_t c = rem % idx_shape[d];
      rem /= idx_shape[d];
      if (d == dim) {
        check_index(idx[e], n, "gather");
        c = idx[e];
      }
      off += c * in_st[d];
    }
    std::memcpy(dst + e * es, src + off * es, es);
  }
}

void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const int64_t* idx = index.data<int64_t>();
  Shape idx_shape = index.shape();
  Shape out_st = out.strides();
  int64_t n = out.shape()[dim];
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("scatter_add: bool tensors are not supported");
    } else {
      T* o = out.data<T>();
      const T* s = src.data<T>();
      for (int64_t e = 0; e < index.numel(); ++e) {
        int64_t rem = e, off = 0;
        for (int d = idx_shape.dim() - 1; d >= 0; --d) {
          int64_t c = rem % idx_shape[d];
          rem /= idx_shape[d];
          if (d == dim) {
            check_index(idx[e], n, "scatter_add");
            c = idx[e];
          }
          off += c * out_st[d];
        }
        o[off] = static_cast<T>(static_cast<acc_t<T>>(o[off]) + static_cast<acc_t<T>>(s[e]));
      }
    }
  });
}

void topk(const Tensor& in, int64_t k, const Tensor& values, const Tensor& indices) {
  int64_t m = in.size(0), n = in.size(1);
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = in.data<T>();
    parallel_range(m, 16, [&](int64_t lo, int64_t hi) {
      std::vector<int64_t> order(n);
      for (int64_t r = lo; r < hi; ++r) {
        const T* row = x + r * n;
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int64_t a, int64_t b) {
          A va = static_cast<A>(row[a]), vb = static_cast<A>(row[b]);
          const bool na = va != va, nb = vb != vb;  // NaN is the greatest (as the CUDA kernels and PyTorch)
          if (na || nb) return na && (!nb || a < b);
          return va > vb || (va == vb && a < b);
        });
        for (int64_t j = 0; j < k; ++j) {
          values.data<T>()[r * k + j] = row[order[j]];
          indices.data<int64_t>()[r * k + j] = order[j];
        }
      }
    });
  });
}

void cumsum(const Tensor& in, const Tensor& out) {
  int64_t m = in.size(0), n = in.size(1);
  dispatch_dtype(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("cumsum: cast bool tensors to an integer type first");
    } else {
      using A = std::conditional_t<std::is_integral_v<T>, int64_t, std::conditional_t<std::is_same_v<T, double>, double, float>>;
      const T* x = in.data<T>();
      T* y = out.data<T>();
      parallel_range(m, 64, [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          A s = 0;
          for (int64_t j = 0; j < n; ++j) {
            s += static_cast<A>(x[r * n + j]);
            y[r * n + j] = static_cast<T>(s);
          }
        }
      });
    }
  });
}

}  // namespace mt::cpu
