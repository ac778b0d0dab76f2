// CPU kernels for fills, ranges, random numbers, copies/casts, unary, binary and where.
// Half types compute in float (acc_t) and round once when stored.
#include <array>
#include <cmath>

#include "cpu_kernels.h"
#include "cpu_loops.h"
#include "mt/math/scalar_math.h"

namespace mt::cpu {

void fill(const Tensor& out, double value) {
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    T v = static_cast<T>(static_cast<acc_t<T>>(value));
    T* p = out.data<T>();
    parallel_range(out.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) p[i] = v;
    });
  });
}

void arange(const Tensor& out, double start, double step) {
  dispatch_dtype(out.dtype(), [&]<typename T>() {
    T* p = out.data<T>();
    for (int64_t i = 0; i < out.numel(); ++i) p[i] = static_cast<T>(static_cast<acc_t<T>>(start + i * step));
  });
}

void uniform(const Tensor& out, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double lo, double hi) {
  if (offset_base) offset += *offset_base;
  dispatch_floating(out.dtype(), "uniform", [&]<typename T>() {
    T* p = out.data<T>();
    parallel_range(out.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float u = philox_uniform(seed, offset + i);
        p[i] = static_cast<T>(static_cast<acc_t<T>>(lo + (hi - lo) * static_cast<double>(u)));
      }
    });
  });
}

void normal(const Tensor& out, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double mean, double std) {
  if (offset_base) offset += *offset_base;
  dispatch_floating(out.dtype(), "normal", [&]<typename T>() {
    T* p = out.data<T>();
    parallel_range(out.numel(), 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        float z = math::philox_normal(seed, offset, i);
        p[i] = static_cast<T>(static_cast<acc_t<T>>(mean + std * static_cast<double>(z)));
      }
    });
  });
}

template <typename S, typename D>
static D convert(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return static_cast<float>(static_cast<acc_t<S>>(v)) != 0.0f;
  } else if constexpr (std::is_same_v<S, bool>) {
    return static_cast<D>(static_cast<acc_t<D>>(v ? 1 : 0));
  } else {
    return static_cast<D>(static_cast<acc_t<D>>(static_cast<acc_t<S>>(v)));
  }
}

void copy(const Tensor& src, const Tensor& dst) {
  dispatch_dtype(src.dtype(), [&]<typename S>() {
    dispatch_dtype(dst.dtype(), [&]<typename D>() {
      const S* s = static_cast<const S*>(src.data_ptr());
      D* d = static_cast<D*>(dst.data_ptr());
      if (src.is_contiguous() && dst.is_contiguous()) {
        parallel_range(src.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) d[i] = convert<S, D>(s[i]);
        });
        return;
      }
      for_each_strided<2>(dst.shape(), {&src.strides(), &dst.strides()},
                          [&](const std::array<int64_t, 2>& o) { d[o[1]] = convert<S, D>(s[o[0]]); });
    });
  });
}

void unary(UnaryOp op, const Tensor& in, const Tensor& out, double alpha) {
  auto body = [&]<typename T>() {
    using A = acc_t<T>;
    const T* x = in.data<T>();
    T* y = out.data<T>();
    int code = static_cast<int>(op);
    parallel_range(in.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) y[i] = static_cast<T>(math::unary<A>(code, static_cast<A>(x[i]), static_cast<A>(alpha)));
    });
  };
  bool integer_ok = op == UnaryOp::kNeg || op == UnaryOp::kAbs || op == UnaryOp::kScale || op == UnaryOp::kAddScalar;
  if (integer_ok && (in.dtype() == DType::kI32 || in.dtype() == DType::kI64)) {
    if (in.dtype() == DType::kI32) body.template operator()<int32_t>();
    else body.template operator()<int64_t>();
    return;
  }
  dispatch_floating(in.dtype(), "unary op", body);
}

void unary_backward(UnaryGradOp op, const Tensor& grad_out, const Tensor& x, const Tensor& grad_in) {
  dispatch_floating(x.dtype(), "unary backward", [&]<typename T>() {
    using A = acc_t<T>;
    const T* g = grad_out.data<T>();
    const T* xv = x.data<T>();
    T* gi = grad_in.data<T>();
    int code = static_cast<int>(op);
    parallel_range(x.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i)
        gi[i] = static_cast<T>(math::unary_grad<A>(code, static_cast<A>(g[i]), static_cast<A>(xv[i])));
    });
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  int code = static_cast<int>(op);
  bool compare = op >= BinaryOp::kEq;
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    using A = acc_t<T>;
    const T* pa = static_cast<const T*>(a.data_ptr());
    const T* pb = static_cast<const T*>(b.data_ptr());
    if (compare) {
      bool* po = out.data<bool>();
      for_each_strided<3>(out.shape(), {&a.strides(), &b.strides(), &out.strides()}, [&](const std::array<int64_t, 3>& o) {
        po[o[2]] = math::binary_compare<A>(code, static_cast<A>(pa[o[0]]), static_cast<A>(pb[o[1]]));
      });
    } else if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("binary op: arithmetic on bool tensors is not supported");
    } else {
      T* po = static_cast<T*>(out.data_ptr());
      for_each_strided<3>(out.shape(), {&a.strides(), &b.strides(), &out.strides()}, [&](const std::array<int64_t, 3>& o) {
        po[o[2]] = static_cast<T>(math::binary<A>(code, static_cast<A>(pa[o[0]]), static_cast<A>(pb[o[1]])));
      });
    }
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  dispatch_dtype(a.dtype(), [&]<typename T>() {
    const bool* pc = static_cast<const bool*>(cond.data_ptr());
    const T* pa = static_cast<const T*>(a.data_ptr());
    const T* pb = static_cast<const T*>(b.data_ptr());
    T* po = out.data<T>();
    Shape ost = out.strides();
    for_each_strided<4>(out.shape(), {&cond.strides(), &a.strides(), &b.strides(), &ost},
                        [&](const std::array<int64_t, 4>& o) { po[o[3]] = pc[o[0]] ? pa[o[1]] : pb[o[2]]; });
  });
}

}  // namespace mt::cpu
