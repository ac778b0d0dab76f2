// CUDA kernels for fills, ranges, random numbers, copies/casts, unary, binary and where: unpack
// tensors and call the kernels/ launchers on the tensor's device stream. Fill values are converted
// on the host with the CPU's own conversion, so both backends store the same bits.
#include <cstring>

#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "elementwise.h"
#include "random.h"

namespace mt::cuda {

void fill(const Tensor& out, double value) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  dispatch_dtype(out.dtype(), [&]<typename T>() {  // host types: the CPU kernel's conversion
    T v = static_cast<T>(static_cast<acc_t<T>>(value));
    dispatch_bits(sizeof(T), [&]<typename U>() {
      U bits;
      std::memcpy(&bits, &v, sizeof(U));
      MT_CUDA_CHECK(gpu::fill(ptr<U>(out), bits, out.numel(), s));
    });
  });
}

void arange(const Tensor& out, double start, double step) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  dispatch_device_type(out.dtype(), [&]<typename T>() {
    MT_CUDA_CHECK(gpu::arange(ptr<T>(out), out.numel(), start, step, s));
  });
}

void uniform(const Tensor& out, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double lo, double hi) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  dispatch_device_floating(out.dtype(), "uniform", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::uniform(ptr<T>(out), out.numel(), seed, offset, offset_base, lo, hi, s));
  });
}

void normal(const Tensor& out, uint64_t seed, uint64_t offset, const uint64_t* offset_base, double mean, double std) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  dispatch_device_floating(out.dtype(), "normal", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::normal(ptr<T>(out), out.numel(), seed, offset, offset_base, mean, std, s));
  });
}

void copy(const Tensor& src, const Tensor& dst) {
  MT_CHECK(src.shape() == dst.shape(), "copy: source shape ", src.shape(), " differs from destination ", dst.shape());
  if (dst.numel() == 0) return;
  cudaStream_t s = stream_for(dst);
  gpu::StridedLayout<2> layout = make_layout<2>(dst.shape(), {&src.strides(), &dst.strides()}, "copy");
  dispatch_device_type(src.dtype(), [&]<typename S>() {
    dispatch_device_type(dst.dtype(), [&]<typename D>() {
      if (is_dense(layout)) {
        MT_CUDA_CHECK(gpu::copy_contiguous(ptr<const S>(src), ptr<D>(dst), dst.numel(), s));
      } else {
        MT_CUDA_CHECK(gpu::copy_strided(ptr<const S>(src), ptr<D>(dst), layout, dst.numel(), s));
      }
    });
  });
}

static_assert(static_cast<int>(UnaryOp::kGelu) == gpu::kUnaryGelu);

void unary(UnaryOp op, const Tensor& in, const Tensor& out, double alpha) {
  if (in.numel() == 0) return;
  cudaStream_t s = stream_for(in);
  auto body = [&]<typename T>() {
    MT_CUDA_CHECK(gpu::unary(static_cast<int>(op), ptr<const T>(in), ptr<T>(out), in.numel(), alpha, s));
  };
  bool integer_ok = op == UnaryOp::kNeg || op == UnaryOp::kAbs || op == UnaryOp::kScale || op == UnaryOp::kAddScalar;
  if (integer_ok && (in.dtype() == DType::kI32 || in.dtype() == DType::kI64)) {
    if (in.dtype() == DType::kI32) body.template operator()<int32_t>();
    else body.template operator()<int64_t>();
    return;
  }
  dispatch_device_floating(in.dtype(), "unary op", body);
}

void unary_backward(UnaryGradOp op, const Tensor& grad_out, const Tensor& x, const Tensor& grad_in) {
  if (x.numel() == 0) return;
  cudaStream_t s = stream_for(x);
  dispatch_device_floating(x.dtype(), "unary backward", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::unary_backward(static_cast<int>(op), ptr<const T>(grad_out), ptr<const T>(x), ptr<T>(grad_in),
                                      x.numel(), s));
  });
}

void binary(BinaryOp op, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  int code = static_cast<int>(op);
  bool compare = op >= BinaryOp::kEq;
  gpu::StridedLayout<3> layout =
      make_layout<3>(out.shape(), {&a.strides(), &b.strides(), &out.strides()}, "binary op");
  auto run = [&]<typename T, typename O>() {
    if (is_dense(layout)) {
      MT_CUDA_CHECK(gpu::binary_contiguous(code, ptr<const T>(a), ptr<const T>(b), ptr<O>(out), out.numel(), s));
    } else {
      MT_CUDA_CHECK(gpu::binary_strided(code, ptr<const T>(a), ptr<const T>(b), ptr<O>(out), layout, out.numel(), s));
    }
  };
  dispatch_device_type(a.dtype(), [&]<typename T>() {
    if (compare) {
      MT_CHECK(out.dtype() == DType::kBool, "binary comparison: expected a bool output, got ", out.describe());
      run.template operator()<T, bool>();
    } else if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("binary op: arithmetic on bool tensors is not supported");
    } else {
      run.template operator()<T, T>();
    }
  });
}

void where(const Tensor& cond, const Tensor& a, const Tensor& b, const Tensor& out) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  gpu::StridedLayout<4> layout =
      make_layout<4>(out.shape(), {&cond.strides(), &a.strides(), &b.strides(), &out.strides()}, "where");
  dispatch_bits(a.element_size(), [&]<typename U>() {
    MT_CUDA_CHECK(gpu::where(ptr<const bool>(cond), ptr<const U>(a), ptr<const U>(b), ptr<U>(out), layout,
                             out.numel(), s));
  });
}

}  // namespace mt::cuda
