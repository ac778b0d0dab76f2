// Launchers of the indexing CUDA kernels (indexing.cu): row selection and accumulation by index,
// gather/scatter_add along a dim, and per-row top-k. Index arrays are i64 on the device; an index
// out of range stops the kernel (see Note [Device index checks] in launch_utils.cuh).
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

#include "elementwise.h"  // kMaxDims

namespace mt::gpu {

// out (outer, m, inner) = in (outer, n, inner) at rows index (m); any element type of `element_size` bytes.
cudaError_t index_select(const void* in, void* out, const int64_t* index, int64_t outer, int64_t n, int64_t m,
                         int64_t inner, size_t element_size, cudaStream_t stream);
// out (outer, n, inner) += src (outer, m, inner) at rows index (m) (m < 2^31), deterministically:
// see Note [Deterministic index_add] in indexing.cu. `workspace` holds index_add_workspace_bytes(m, n).
size_t index_add_workspace_bytes(int64_t m, int64_t n);
template <typename T>
cudaError_t index_add(T* out, const T* src, const int64_t* index, int64_t outer, int64_t n, int64_t m, int64_t inner,
                      void* workspace, cudaStream_t stream);

// The index tensor's shape, the strides of the tensor addressed through it, the dim the index
// replaces and that dim's size in the addressed tensor.
struct GatherLayout {
  int ndim = 0;
  int dim = 0;
  int64_t dim_size = 0;
  int64_t index_size[kMaxDims] = {};
  int64_t stride[kMaxDims] = {};
};

// out[e] = in[offset(e with coordinate `dim` replaced by index[e])] for the numel elements of index.
cudaError_t gather(const void* in, void* out, const int64_t* index, const GatherLayout& layout, int64_t numel,
                   size_t element_size, cudaStream_t stream);
// out[offset(e with coordinate `dim` replaced by index[e])] += src[e] with atomics: duplicate targets add in
// a racy order (MoE uses it only where targets are distinct).
template <typename T>
cudaError_t scatter_add(T* out, const T* src, const int64_t* index, const GatherLayout& layout, int64_t numel,
                        cudaStream_t stream);

// Per row of in (m, n): the k largest values in descending order and their indices; equal values
// keep the lower index first; NaN counts as the largest value. workspace: topk_workspace_bytes
// (0 where the warp kernel serves; Note [Top-k by sorting] in indexing.cu).
template <typename T>
size_t topk_workspace_bytes(int64_t m, int64_t n, int64_t k);
template <typename T>
cudaError_t topk(const T* in, T* values, int64_t* indices, int64_t m, int64_t n, int64_t k, void* workspace,
                 cudaStream_t stream);

}  // namespace mt::gpu
