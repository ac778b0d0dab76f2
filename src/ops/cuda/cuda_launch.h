// Helpers for the CUDA ops in src/ops/cuda: dtype dispatch to device element types
// (__nv_bfloat16 and __half share mt::bf16 / mt::f16's bits), the stream of a tensor's device,
// and StridedLayout building (size-1 dims dropped, dims contiguous in every operand merged).
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <array>
#include <cstdint>

#include "elementwise.h"  // kernels/: gpu::StridedLayout
#include "mt/core/cuda_context.h"
#include "mt/core/tensor.h"

namespace mt::cuda {

static_assert(sizeof(__nv_bfloat16) == sizeof(bf16) && sizeof(__half) == sizeof(f16));

// Calls fn.template operator()<T>() with the device type of `t`.
template <typename Fn>
decltype(auto) dispatch_device_type(DType t, Fn&& fn) {
  switch (t) {
    case DType::kF32: return fn.template operator()<float>();
    case DType::kF64: return fn.template operator()<double>();
    case DType::kBF16: return fn.template operator()<__nv_bfloat16>();
    case DType::kF16: return fn.template operator()<__half>();
    case DType::kI32: return fn.template operator()<int32_t>();
    case DType::kI64: return fn.template operator()<int64_t>();
    case DType::kBool: return fn.template operator()<bool>();
  }
  MT_FAIL("unknown dtype");
}

// Floating device types only; other dtypes are an error naming `op`.
template <typename Fn>
decltype(auto) dispatch_device_floating(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::kF32: return fn.template operator()<float>();
    case DType::kF64: return fn.template operator()<double>();
    case DType::kBF16: return fn.template operator()<__nv_bfloat16>();
    case DType::kF16: return fn.template operator()<__half>();
    default: MT_FAIL(op, ": expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(t));
  }
}

// Calls fn.template operator()<U>() with the unsigned integer type of `bytes` bytes.
template <typename Fn>
decltype(auto) dispatch_bits(size_t bytes, Fn&& fn) {
  switch (bytes) {
    case 1: return fn.template operator()<uint8_t>();
    case 2: return fn.template operator()<uint16_t>();
    case 4: return fn.template operator()<uint32_t>();
    case 8: return fn.template operator()<uint64_t>();
  }
  MT_FAIL("no element type of ", bytes, " bytes");
}

// The tensor's first element as a T* (a device type of the dtype's size); null for an undefined tensor.
template <typename T>
T* ptr(const Tensor& t) {
  if (!t.defined()) return nullptr;
  MT_ASSERT(t.element_size() == sizeof(T));
  return static_cast<T*>(t.data_ptr());
}

// Makes t's device current for the calling thread and returns that device's compute stream.
inline cudaStream_t stream_for(const Tensor& t) {
  MT_CHECK(t.device().is_cuda(), "expected a CUDA tensor, got ", t.describe());
  set_device(t.device().index);
  return current_stream(t.device().index);
}

// The layout of N operands viewed with `shape` and their element strides; `op` names the caller in errors.
template <int N>
gpu::StridedLayout<N> make_layout(const Shape& shape, const std::array<const Shape*, N>& strides, const char* op) {
  gpu::StridedLayout<N> l;
  int64_t size[64];
  int64_t stride[N][64];
  int nd = 0;
  MT_CHECK(shape.dim() <= 64, op, ": at most 64 dims supported, got shape ", shape);
  for (int d = 0; d < shape.dim(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = nd > 0;
    for (int k = 0; k < N && merge; ++k) merge = stride[k][nd - 1] == (*strides[k])[d] * shape[d];
    if (merge) {
      size[nd - 1] *= shape[d];
      for (int k = 0; k < N; ++k) stride[k][nd - 1] = (*strides[k])[d];
    } else {
      size[nd] = shape[d];
      for (int k = 0; k < N; ++k) stride[k][nd] = (*strides[k])[d];
      ++nd;
    }
  }
  MT_CHECK(nd <= gpu::kMaxDims, op, ": shape ", shape, " needs ", nd, " strided dims on the GPU, at most ",
           gpu::kMaxDims, " are supported");
  l.ndim = nd;
  for (int d = 0; d < nd; ++d) {
    l.size[d] = size[d];
    for (int k = 0; k < N; ++k) l.stride[k][d] = stride[k][d];
  }
  return l;
}

// True when every operand of the layout is dense in row-major order (flat index = element offset).
template <int N>
bool is_dense(const gpu::StridedLayout<N>& l) {
  if (l.ndim == 0) return true;
  if (l.ndim > 1) return false;
  for (int k = 0; k < N; ++k)
    if (l.stride[k][0] != 1) return false;
  return true;
}

}  // namespace mt::cuda
