// CUDA row reductions: in (M, K) -> out (M); unpacks tensors, provides the scratch of split
// reductions and calls kernels/reduce.h; the sums of squares of many tensors (kernels/sum_squares.h).
#include <type_traits>

#include "cuda_kernels.h"
#include "cuda_launch.h"
#include "reduce.h"
#include "sum_squares.h"

namespace mt::cuda {

void reduce_rows(ReduceOp op, const Tensor& in, const Tensor& out) {
  int64_t m = in.size(0), k = in.size(1);
  if (m == 0) return;
  MT_CHECK(k > 0 || op == ReduceOp::kSum || op == ReduceOp::kSumSquares,
           "reduction over an empty dimension of ", in.describe());
  cudaStream_t s = stream_for(in);
  dispatch_device_type(in.dtype(), [&]<typename T>() {
    if constexpr (std::is_same_v<T, bool>) {
      MT_FAIL("reduction over a bool tensor: cast it first");
    } else {
      // Scratch for split reductions. Dropping it right after the launch is safe: the caching
      // allocator hands the block out again only on this stream, after the kernels that use it.
      size_t bytes = gpu::reduce_rows_scratch_bytes<T>(static_cast<int>(op), m, k);
      Tensor scratch;
      if (bytes) scratch = Tensor::empty({static_cast<int64_t>((bytes + 7) / 8)}, DType::kI64, in.device());
      void* sp = bytes ? scratch.data_ptr() : nullptr;
      if (op == ReduceOp::kArgMax) {
        MT_CUDA_CHECK(gpu::argmax_rows(ptr<const T>(in), out.data<int64_t>(), m, k, sp, s));
      } else {
        MT_CHECK(out.dtype() == in.dtype(), "reduction: output ", out.describe(), " must have the input's dtype");
        MT_CUDA_CHECK(gpu::reduce_rows(static_cast<int>(op), ptr<const T>(in), ptr<T>(out), m, k, sp, s));
      }
    }
  });
}

void sum_squares_many(const std::vector<Tensor>& tensors, const Tensor& out) {
  auto n = static_cast<int64_t>(tensors.size());
  if (n == 0) return;
  DType dt = tensors[0].dtype();
  std::vector<const void*> ptrs;
  std::vector<int64_t> numel;
  for (const Tensor& t : tensors) {
    MT_CHECK(t.dtype() == dt && (t.is_contiguous() || t.numel() == 0) && t.device() == out.device(), "sum_squares_many (cuda): ",
             "expected contiguous ", dtype_name(dt), " tensors on ", out.device(), ", got ", t.describe());
    ptrs.push_back(t.data_ptr());
    numel.push_back(t.numel());
  }
  cudaStream_t s = stream_for(out);
  dispatch_device_floating(dt, "sum_squares_many", [&]<typename T>() {
    using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
    MT_CHECK(out.dtype() == (std::is_same_v<A, double> ? DType::kF64 : DType::kF32) && out.numel() == n,
             "sum_squares_many (cuda): out must hold ", n, " sums, got ", out.describe());
    Tensor scratch = Tensor::empty({gpu::sum_squares_scratch(numel.data(), n)}, out.dtype(), out.device());
    MT_CUDA_CHECK((gpu::sum_squares_many<T, A>(reinterpret_cast<const T* const*>(ptrs.data()), numel.data(), n,
                                                  ptr<A>(out), ptr<A>(scratch), s)));
  });
}

}  // namespace mt::cuda
