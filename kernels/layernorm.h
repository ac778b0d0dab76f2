// Launchers for LayerNorm over the last dim of a contiguous (rows, cols) matrix: forward with the
// per-row mean and 1/std, and backward with dx and deterministic dw/db (per-group partial sums, then a
// fixed-order column reduction; no atomics); alone, or with the residual add before it fused in (Note
// [Residual add fused with LayerNorm]). T: float, double, __nv_bfloat16, __half; S (stats): float, or
// double with T = double.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// y = (x - mean) * rstd * w (+ b); b may be null.
template <typename T, typename S>
cudaError_t layernorm_forward(T* y, S* mean, S* rstd, const T* x, const T* w, const T* b, int64_t rows, int64_t cols,
                              double eps, cudaStream_t stream);

// h = x + r (rounded to T, written out), then y = LayerNorm(h) as above, in the same pass over the rows.
template <typename T, typename S>
cudaError_t add_layernorm_forward(T* h, T* y, S* mean, S* rstd, const T* x, const T* r, const T* w, const T* b,
                                  int64_t rows, int64_t cols, double eps, cudaStream_t stream);

// Elements of the partial-sum buffer layernorm_backward needs (in the accumulation type: float, or
// double for T = double).
int64_t layernorm_backward_partial_elems(int64_t rows, int64_t cols);

// dx = rstd * (w*dy - mean(w*dy) - xhat * mean(w*dy*xhat)); dw = sum_rows dy*xhat; db = sum_rows dy (db may be
// null), in G: T, or f32 for half T (the f32 gradients of half weights). `partial` holds
// layernorm_backward_partial_elems(rows, cols) accumulation-type elements.
template <typename T, typename S, typename G>
cudaError_t layernorm_backward(T* dx, G* dw, G* db, const T* dy, const T* x, const T* w, const S* mean, const S* rstd,
                               int64_t rows, int64_t cols, void* partial, cudaStream_t stream);

// layernorm_backward with h as the input and dh added to dx in the same pass: dx = dh + rstd * (...).
// `partial` as above.
template <typename T, typename S, typename G>
cudaError_t add_layernorm_backward(T* dx, G* dw, G* db, const T* dy, const T* dh, const T* h, const T* w,
                                   const S* mean, const S* rstd, int64_t rows, int64_t cols, void* partial,
                                   cudaStream_t stream);

}  // namespace mt::gpu
