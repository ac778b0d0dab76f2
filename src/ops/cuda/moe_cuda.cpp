// CUDA MoE ops: unpack tensors and call kernels/moe.h (the fused router with its scratch from the
// caching allocator, the buffer map, and the row moves). Index ranges are checked on the device
// (Note [Device index checks] in kernels/launch_utils.cuh).
#include <limits>
#include <type_traits>

#include "cuda_launch.h"
#include "cuda_kernels.h"
#include "moe.h"

namespace mt::cuda {

namespace {

// The weight type of the row moves for element type T: double for double, float otherwise.
template <typename T>
using weight_t = std::conditional_t<std::is_same_v<T, double>, double, float>;

}  // namespace

void moe_route(const Tensor& logits, const Tensor& noise, int64_t capacity, const Tensor& expert, const Tensor& slot,
               const Tensor& weight, const Tensor& counts, const Tensor& lse, const Tensor& stats) {
  const int64_t tokens = logits.size(0), experts = logits.size(1), k = expert.size(1);
  MT_CHECK(experts <= gpu::kRouteMaxExperts, "moe_route (cuda): at most ", gpu::kRouteMaxExperts,
           " experts per layer, got ", experts);
  MT_CHECK(k <= gpu::kRouteMaxTopK, "moe_route (cuda): top_k at most ", gpu::kRouteMaxTopK, ", got ", k);
  MT_CHECK(tokens * k <= std::numeric_limits<int>::max(), "moe_route (cuda): ", tokens, " tokens x ", k,
           " choices exceed the 32-bit counters");
  cudaStream_t s = stream_for(logits);
  size_t bytes = gpu::moe_route_scratch_bytes(tokens, experts, k, logits.element_size());
  Tensor scratch = Tensor::empty({static_cast<int64_t>((bytes + 7) / 8)}, DType::kI64, logits.device());
  auto run = [&]<typename T>() {
    MT_CUDA_CHECK(gpu::moe_route<T>(ptr<const T>(logits), ptr<const T>(noise), tokens, experts, k, capacity,
                                    ptr<int64_t>(expert), ptr<int64_t>(slot), ptr<T>(weight), ptr<int64_t>(counts),
                                    ptr<T>(lse), ptr<T>(stats), scratch.data_ptr(), s));
  };
  switch (logits.dtype()) {
    case DType::kF32: run.template operator()<float>(); break;
    case DType::kF64: run.template operator()<double>(); break;
    default: MT_FAIL("moe_route (cuda): logits must be f32 or f64, got ", logits.describe());
  }
}

void moe_select(const Tensor& expert, const Tensor& priority, int64_t capacity, const Tensor& slot, const Tensor& kept) {
  MT_CHECK(priority.size(1) <= gpu::kRouteMaxExperts, "moe_select (cuda): at most ", gpu::kRouteMaxExperts,
           " experts per layer, got ", priority.size(1));
  MT_CHECK(expert.size(0) <= std::numeric_limits<int>::max(), "moe_select (cuda): ", expert.size(0),
           " tokens exceed the 32-bit counters");
  cudaStream_t s = stream_for(expert);
  MT_CUDA_CHECK(gpu::moe_select(ptr<const int64_t>(expert), ptr<const float>(priority), expert.size(0),
                                priority.size(1), capacity, ptr<int64_t>(slot), ptr<int64_t>(kept), s));
}

void moe_buffer_map(const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& buffer_choice) {
  cudaStream_t s = stream_for(expert);
  MT_CUDA_CHECK(gpu::moe_buffer_map(ptr<const int64_t>(expert), ptr<const int64_t>(slot), expert.numel(), capacity,
                                    ptr<int64_t>(buffer_choice), buffer_choice.numel(), s));
}

void moe_permute(const Tensor& in, const Tensor& buffer_choice, int64_t top_k, const Tensor& weight,
                 const Tensor& out) {
  cudaStream_t s = stream_for(in);
  dispatch_device_floating(in.dtype(), "moe_permute", [&]<typename T>() {
    using W = weight_t<T>;
    MT_CUDA_CHECK((gpu::moe_permute<T, W>(ptr<const T>(in), ptr<const int64_t>(buffer_choice), ptr<const W>(weight),
                                         out.size(0), in.size(0), top_k, out.size(1), ptr<T>(out), s)));
  });
}

void moe_unpermute(const Tensor& in, const Tensor& expert, const Tensor& slot, int64_t capacity, const Tensor& weight,
                   const Tensor& out) {
  cudaStream_t s = stream_for(in);
  dispatch_device_floating(in.dtype(), "moe_unpermute", [&]<typename T>() {
    using W = weight_t<T>;
    MT_CUDA_CHECK((gpu::moe_unpermute<T, W>(ptr<const T>(in), ptr<const int64_t>(expert), ptr<const int64_t>(slot),
                                           ptr<const W>(weight), out.size(0), expert.size(1), capacity, in.size(0),
                                           out.size(1), ptr<T>(out), s)));
  });
}

void moe_unpermute_weight_grad(const Tensor& grad_out, const Tensor& in, const Tensor& expert, const Tensor& slot,
                               int64_t capacity, const Tensor& grad_weight) {
  cudaStream_t s = stream_for(in);
  dispatch_device_floating(in.dtype(), "moe_unpermute_weight_grad", [&]<typename T>() {
    using W = weight_t<T>;
    MT_CUDA_CHECK((gpu::moe_unpermute_weight_grad<T, W>(ptr<const T>(grad_out), ptr<const T>(in),
                                                       ptr<const int64_t>(expert), ptr<const int64_t>(slot),
                                                       grad_out.size(0), expert.size(1), capacity, in.size(0),
                                                       grad_out.size(1), ptr<W>(grad_weight), s)));
  });
}

}  // namespace mt::cuda
