// CUDA row reductions: in (M, K) -> out (M); unpacks tensors and calls kernels/reduce.h.
#include <type_traits>

#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "reduce.h"

namespace mt::cuda {

void reduce_rows(ReduceOp op, const Tensor& in, const Tensor& out) {
  int64_t m = in.size(0), k = in.size(1);
  if (m == 0) return;
  MT_CHECK(k > 0 || op == ReduceOp::Sum || op == ReduceOp::SumSquares,
           "reduction over an empty dimension of ", in.describe());
  cudaStream_t s = stream_for(in);
  dispatch_device_type(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("reduction over a bool tensor: cast it first");
    } else if (op == ReduceOp::ArgMax) {
      MT_CUDA_CHECK(gpu::argmax_rows(ptr<const T>(in), out.data<int64_t>(), m, k, s));
    } else {
      MT_CHECK(out.dtype() == in.dtype(), "reduction: output ", out.describe(), " must have the input's dtype");
      MT_CUDA_CHECK(gpu::reduce_rows(static_cast<int>(op), ptr<const T>(in), ptr<T>(out), m, k, s));
    }
  });
}

}  // namespace mt::cuda
