// CUDA index_select/index_add (row moves), gather/scatter_add, topk and cumsum: unpack tensors and
// call kernels/indexing.h and kernels/reduce.h. Index ranges are checked on the device (Note
// [Device index checks] in kernels/launch_utils.cuh); index_add is deterministic (Note
// [Deterministic index_add] in kernels/indexing.cu); scatter_add uses atomics.
#include <type_traits>

#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "indexing.h"
#include "reduce.h"

namespace mt::cuda {

namespace {

// The index tensor's shape with the strides of `addressed`, whose dim `dim` the index replaces.
gpu::GatherLayout gather_layout(const Tensor& index, const Tensor& addressed, int dim, const char* op) {
  MT_CHECK(index.dim() <= gpu::kMaxDims, op, ": at most ", gpu::kMaxDims, " dims on the GPU, got ", index.describe());
  MT_CHECK(index.dim() == addressed.dim(), op, ": index ", index.describe(), " and ", addressed.describe(),
           " differ in rank");
  gpu::GatherLayout l;
  l.ndim = index.dim();
  l.dim = dim;
  l.dim_size = addressed.dim() == 0 ? 1 : addressed.shape()[dim];
  for (int d = 0; d < l.ndim; ++d) {
    l.index_size[d] = index.shape()[d];
    l.stride[d] = addressed.strides()[d];
  }
  return l;
}

}  // namespace

void index_select(const Tensor& in, int64_t outer, int64_t n, int64_t inner, const Tensor& index, const Tensor& out) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  MT_CUDA_CHECK(gpu::index_select(in.data_ptr(), out.data_ptr(), index.data<int64_t>(), outer, n, index.numel(), inner,
                                  in.element_size(), s));
}

void index_add(const Tensor& out, int64_t outer, int64_t n, int64_t inner, const Tensor& index, const Tensor& src) {
  if (src.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  dispatch_device_type(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("index_add: bool tensors are not supported");
    } else {
      Tensor workspace = Tensor::empty({static_cast<int64_t>(gpu::index_add_workspace_bytes(index.numel(), n))},
                                       DType::kBool, out.device());  // bytes from the caching allocator
      MT_CUDA_CHECK(gpu::index_add(ptr<T>(out), ptr<const T>(src), index.data<int64_t>(), outer, n, index.numel(),
                                   inner, workspace.data_ptr(), s));
    }
  });
}

void gather(const Tensor& in, int dim, const Tensor& index, const Tensor& out) {
  if (out.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  gpu::GatherLayout l = gather_layout(index, in, dim, "gather");
  MT_CUDA_CHECK(gpu::gather(in.data_ptr(), out.data_ptr(), index.data<int64_t>(), l, index.numel(), in.element_size(), s));
}

void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  if (src.numel() == 0) return;
  cudaStream_t s = stream_for(out);
  gpu::GatherLayout l = gather_layout(index, out, dim, "scatter_add");
  dispatch_device_type(out.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("scatter_add: bool tensors are not supported");
    } else {
      MT_CUDA_CHECK(gpu::scatter_add(ptr<T>(out), ptr<const T>(src), index.data<int64_t>(), l, index.numel(), s));
    }
  });
}

void topk(const Tensor& in, int64_t k, const Tensor& values, const Tensor& indices) {
  int64_t m = in.size(0), n = in.size(1);
  MT_CHECK(k >= 0 && k <= n, "topk: k = ", k, " out of range for rows of ", n);
  if (m == 0 || k == 0) return;
  cudaStream_t s = stream_for(in);
  dispatch_device_type(in.dtype(), [&]<typename T>() {
    Tensor workspace = Tensor::empty({static_cast<int64_t>(gpu::topk_workspace_bytes<T>(m, n, k))}, DType::kBool,
                                     in.device());  // bytes from the caching allocator
    MT_CUDA_CHECK(gpu::topk(ptr<const T>(in), ptr<T>(values), indices.data<int64_t>(), m, n, k, workspace.data_ptr(), s));
  });
}

void cumsum(const Tensor& in, const Tensor& out) {
  int64_t m = in.size(0), n = in.size(1);
  if (m == 0 || n == 0) return;
  cudaStream_t s = stream_for(in);
  dispatch_device_type(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("cumsum: cast bool tensors to an integer type first");
    } else {
      MT_CUDA_CHECK(gpu::cumsum_rows(ptr<const T>(in), ptr<T>(out), m, n, s));
    }
  });
}

}  // namespace mt::cuda
