// Launcher adding a bias vector to every row of a contiguous (rows, cols) matrix: the matmul's bias
// where cuBLASLt's bias epilogue does not apply (f64, a misaligned bias, K = 0).
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpu {

// out[r, c] += bias[r / group_rows, c]: each run of group_rows rows has its own bias row (group_rows =
// rows: one bias vector for all). T: float, double, __nv_bfloat16, __half.
template <typename T>
cudaError_t add_bias_rows(T* out, const T* bias, int64_t rows, int64_t cols, int64_t group_rows,
                          cudaStream_t stream);

}  // namespace mt::gpu
