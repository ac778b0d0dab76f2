// Host-side glue between framework tensors and kernels/ launchers: the CUDA element type of a
// floating dtype (bf16 -> __nv_bfloat16, f16 -> __half) and typed device pointers of a tensor.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include "mt/core/cuda_context.h"
#include "mt/core/tensor.h"

namespace mt::cuda {

// Calls fn.template operator()<T>() with the CUDA type of floating dtype `t`; other dtypes are an error naming `op`.
template <typename Fn>
decltype(auto) dispatch_cuda_floating(DType t, const char* op, Fn&& fn) {
  switch (t) {
    case DType::F32: return fn.template operator()<float>();
    case DType::F64: return fn.template operator()<double>();
    case DType::BF16: return fn.template operator()<__nv_bfloat16>();
    case DType::F16: return fn.template operator()<__half>();
    default: MT_FAIL(op, ": expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(t));
  }
}

// The tensor's first element as a T* (T a CUDA element type of the same size as the dtype); null if undefined.
template <typename T>
T* ptr(const Tensor& t) {
  if (!t.defined()) return nullptr;
  MT_ASSERT(t.element_size() == sizeof(T));
  return static_cast<T*>(t.data_ptr());
}

// Makes the tensor's GPU current and returns the stream its ops go to.
inline cudaStream_t stream_for(const Tensor& t) {
  MT_CHECK(t.device().is_cuda(), "expected a CUDA tensor, got ", t.describe());
  set_device(t.device().index);
  return current_stream(t.device().index);
}

}  // namespace mt::cuda
