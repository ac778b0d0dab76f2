// Device-side element types: the accumulation type of each storage type and the conversions,
// written to round exactly as the CPU kernels do (half types through float, nearest-even), so a
// cast, fill or random draw gives the same bits on both backends.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>
#include <type_traits>

namespace mt::gpu {

template <typename T> struct AccType { using type = T; };
template <> struct AccType<__nv_bfloat16> { using type = float; };
template <> struct AccType<__half> { using type = float; };
template <typename T> using acc_t = typename AccType<T>::type;

template <typename T> __device__ __forceinline__ acc_t<T> to_acc(T v) { return v; }
template <> __device__ __forceinline__ float to_acc<__nv_bfloat16>(__nv_bfloat16 v) { return __bfloat162float(v); }
template <> __device__ __forceinline__ float to_acc<__half>(__half v) { return __half2float(v); }

template <typename T> __device__ __forceinline__ T from_acc(acc_t<T> v) { return v; }
template <> __device__ __forceinline__ __nv_bfloat16 from_acc<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }
template <> __device__ __forceinline__ __half from_acc<__half>(float v) { return __float2half_rn(v); }

// D from any arithmetic value x, as the CPU's static_cast<D>(static_cast<acc_t<D>>(x)): a double
// bound for bf16 rounds to float first, then to bf16 (never directly).
template <typename D, typename X> __device__ __forceinline__ D cast_to(X x) {
  return from_acc<D>(static_cast<acc_t<D>>(x));
}

// The CPU copy kernel's element conversion (elementwise_cpu.cpp, convert<S, D>).
template <typename S, typename D> __device__ __forceinline__ D convert(S v) {
  if constexpr (std::is_same_v<D, bool>) {
    return static_cast<float>(to_acc(v)) != 0.0f;
  } else if constexpr (std::is_same_v<S, bool>) {
    return cast_to<D>(v ? 1 : 0);
  } else {
    return cast_to<D>(to_acc(v));
  }
}

}  // namespace mt::gpu
