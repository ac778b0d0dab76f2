// Launchers of the elementwise CUDA kernels (elementwise.cu): fill, arange, copy with casts,
// unary ops and their backward, binary ops and where. Raw pointers, sizes and a stream; each
// returns the launch status. Element types are device types (__nv_bfloat16, __half for halves).
#pragma once
#include <cuda_runtime_api.h>

#include <cstdint>

namespace mt::gpu {

constexpr int kMaxDims = 8;

// Sizes and per-operand element strides of up to kMaxDims dims (row-major order), for N operands.
template <int N>
struct StridedLayout {
  int ndim = 0;
  int64_t size[kMaxDims] = {};
  int64_t stride[N][kMaxDims] = {};
};

// out[i] = bits for i < n; U is the unsigned integer of the element's size (the host computes the bits).
template <typename U>
cudaError_t fill(U* out, U bits, int64_t n, cudaStream_t stream);

// out[i] = T(start + i * step), the double arithmetic unfused as on the CPU.
template <typename T>
cudaError_t arange(T* out, int64_t n, double start, double step, cudaStream_t stream);

// dst = convert(src), both dense.
template <typename S, typename D>
cudaError_t copy_contiguous(const S* src, D* dst, int64_t n, cudaStream_t stream);
// dst = convert(src) over a layout of n elements: operand 0 is src, 1 is dst.
template <typename S, typename D>
cudaError_t copy_strided(const S* src, D* dst, const StridedLayout<2>& layout, int64_t n, cudaStream_t stream);

// The mt::UnaryOp code of gelu (scalar_math.h's case 7) and the mt::UnaryGradOp code of its derivative
// (unary_grad's case 2), which have their own paths for bf16/f16.
constexpr int kUnaryGelu = 7;
constexpr int kUnaryGradGelu = 2;

// out = math::unary(op, in, alpha), dense; op is the mt::UnaryOp code.
template <typename T>
cudaError_t unary(int op, const T* in, T* out, int64_t n, double alpha, cudaStream_t stream);
// grad_in = math::unary_grad(op, grad_out, x), dense; op is the mt::UnaryGradOp code.
template <typename T>
cudaError_t unary_backward(int op, const T* grad_out, const T* x, T* grad_in, int64_t n, cudaStream_t stream);

// out = a op b with O = T for arithmetic codes, O = bool for comparisons (mt::BinaryOp codes).
template <typename T, typename O>
cudaError_t binary_contiguous(int op, const T* a, const T* b, O* out, int64_t n, cudaStream_t stream);
// Operands 0, 1, 2 of the layout are a, b, out.
template <typename T, typename O>
cudaError_t binary_strided(int op, const T* a, const T* b, O* out, const StridedLayout<3>& layout, int64_t n,
                           cudaStream_t stream);

// out = cond ? a : b; U is the unsigned integer of the element's size. Operands: cond, a, b, out.
template <typename U>
cudaError_t where(const bool* cond, const U* a, const U* b, U* out, const StridedLayout<4>& layout, int64_t n,
                  cudaStream_t stream);

}  // namespace mt::gpu
