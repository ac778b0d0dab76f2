// Launchers of the row-reduction and row-scan CUDA kernels (reduce.cu). Inputs are dense (m, k)
// rows; element types are device types. Accumulation: f64 for double, i64 for integers, f32 otherwise.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace mt::gpu {

// Bytes of device scratch reduce_rows / argmax_rows need for (m, k) with `op` (0: one pass, no scratch).
template <typename T>
size_t reduce_rows_scratch_bytes(int op, int64_t m, int64_t k);
// out[r] = reduction of row r; op is the mt::ReduceOp code of Sum, Max, Min or SumSquares. k may
// be 0 only for Sum and SumSquares (out = 0); Max and Min of an empty row give cudaErrorInvalidValue.
// `scratch` holds reduce_rows_scratch_bytes(op, m, k) bytes, aligned to 16 (or is null when that is 0).
template <typename T>
cudaError_t reduce_rows(int op, const T* in, T* out, int64_t m, int64_t k, void* scratch, cudaStream_t stream);
// out[r] = index of the first maximum of row r (k >= 1); scratch as for reduce_rows with op ArgMax.
template <typename T>
cudaError_t argmax_rows(const T* in, int64_t* out, int64_t m, int64_t k, void* scratch, cudaStream_t stream);
// out[r, :] = inclusive prefix sum of in[r, :].
template <typename T>
cudaError_t cumsum_rows(const T* in, T* out, int64_t m, int64_t n, cudaStream_t stream);

}  // namespace mt::gpu
