// Device helpers shared by every kernel in this folder (Note [One set of device helpers]): accumulation
// types and conversions, math in the accumulation type, aligned vector loads and the alignment check, and
// warp / row-group reductions. Grid sizing and index checks are in launch_utils.cuh.
#pragma once
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace mt::gpu {

// Note [One set of device helpers]
// Every kernel file uses these, in namespace mt::gpu: one accumulation type, one set of conversions, one
// aligned vector type (Pack) and one alignment check (is_aligned). They were two dialects once (mt::gpu's
// dtype_cast.cuh with Vec, mt::gpukernels' device_utils.cuh with Pack and aligned16). They agreed for every
// type a kernel is instantiated with (they differed only in acc_t of integer types, which only the mt::gpu
// kernels use; its identity is kept), and the merge left every kernel's sm_90 machine code byte-identical.

// Accumulation type: float for the half types, the type itself otherwise (double for double; integer and
// bool elements accumulate as themselves, as the CPU kernels do).
template <typename T> struct AccType { using type = T; };
template <> struct AccType<__nv_bfloat16> { using type = float; };
template <> struct AccType<__half> { using type = float; };
template <typename T> using acc_t = typename AccType<T>::type;

// Conversions written to round exactly as the CPU kernels do (half types through float, nearest-even), so a
// cast, fill or random draw gives the same bits on both backends.
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

__device__ __forceinline__ float exp_acc(float x) { return expf(x); }
__device__ __forceinline__ double exp_acc(double x) { return exp(x); }
__device__ __forceinline__ float log_acc(float x) { return logf(x); }
__device__ __forceinline__ double log_acc(double x) { return log(x); }
__device__ __forceinline__ float fma_acc(float a, float b, float c) { return fmaf(a, b, c); }
__device__ __forceinline__ double fma_acc(double a, double b, double c) { return fma(a, b, c); }
__device__ __forceinline__ float sqrt_acc(float x) { return sqrtf(x); }
__device__ __forceinline__ double sqrt_acc(double x) { return sqrt(x); }

template <typename A> __device__ __forceinline__ A neg_inf() { return -static_cast<A>(INFINITY); }

// N consecutive elements, loaded or stored with one access when the address is aligned to the pack.
template <typename T, int N>
struct alignas(sizeof(T) * N) Pack {
  T v[N];
};
template <typename T, int N>
__device__ __forceinline__ Pack<T, N> load_pack(const T* p) { return *reinterpret_cast<const Pack<T, N>*>(p); }
template <typename T, int N>
__device__ __forceinline__ void store_pack(T* p, const Pack<T, N>& v) { *reinterpret_cast<Pack<T, N>*>(p) = v; }

// Elements per 16-byte pack.
template <typename T> constexpr int kPack = 16 / static_cast<int>(sizeof(T));

// Whether p may be accessed as Packs (or other vectors) of `bytes` bytes.
inline bool is_aligned(const void* p, size_t bytes) { return reinterpret_cast<uintptr_t>(p) % bytes == 0; }

struct SumOp {
  template <typename A> __device__ __forceinline__ A operator()(A a, A b) const { return a + b; }
};
struct MaxOp {
  template <typename A> __device__ __forceinline__ A operator()(A a, A b) const { return a > b ? a : b; }
};

template <typename A, typename Op>
__device__ __forceinline__ A warp_allreduce(A v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// All-reduce over the blockDim.x threads that share threadIdx.y (one row per y), in a fixed order
// (deterministic). blockDim.x is a multiple of 32; scratch holds blockDim.y * 32 values. Every thread of
// the block must call it (it synchronises the block when a row spans several warps).
template <typename A, typename Op>
__device__ __forceinline__ A row_allreduce(A v, Op op, A* scratch) {
  v = warp_allreduce(v, op);
  if (blockDim.x == 32) return v;
  A* s = scratch + threadIdx.y * 32;
  int warps = blockDim.x / 32;
  __syncthreads();  // earlier readers of `s` are done
  if (threadIdx.x % 32 == 0) s[threadIdx.x / 32] = v;
  __syncthreads();
  A r = s[0];
  for (int w = 1; w < warps; ++w) r = op(r, s[w]);
  return r;
}

}  // namespace mt::gpu
