// Launchers of the MoE CUDA kernels (moe.cu): the fused router (three launches: per-token choices,
// one block scanning the per-block counts, per-token slots and weights), random token selection's keepers,
// and the row moves between tokens and the expert-major buffer. Contracts: Kernels::Moe* in mt/ops/kernel_list.h.
#pragma once
#include <cuda_runtime_api.h>

#include <cstddef>
#include <cstdint>

namespace mt::gpu {

// Limits of the fused router (the glue refuses larger problems with a message).
constexpr int64_t kRouteMaxExperts = 512;
constexpr int64_t kRouteMaxTopK = 8;

// Bytes of device scratch moe_route needs, aligned to 16 at the start.
size_t moe_route_scratch_bytes(int64_t tokens, int64_t experts, int64_t top_k, size_t float_size);

// T: float or double. noise may be null. Writes expert, slot, weight (S, k), counts (2, E), lse (S),
// stats (2E + 2).
template <typename T>
cudaError_t moe_route(const T* logits, const T* noise, int64_t tokens, int64_t experts, int64_t top_k,
                      int64_t capacity, int64_t* expert, int64_t* slot, T* weight, int64_t* counts, T* lse, T* stats,
                      void* scratch, cudaStream_t stream);

// Random token selection for top-1 choices (Kernels::MoeSelect): expert (tokens) i64, priority (tokens, experts)
// f32 -> slot (tokens) i64 (-1 where dropped), kept (experts) i64. One block per expert.
cudaError_t moe_select(const int64_t* expert, const float* priority, int64_t tokens, int64_t experts, int64_t capacity,
                       int64_t* slot, int64_t* kept, cudaStream_t stream);

// buffer_choice (rows) = -1, then the row of each kept choice (expert * capacity + slot) gets its index.
cudaError_t moe_buffer_map(const int64_t* expert, const int64_t* slot, int64_t choices, int64_t capacity,
                           int64_t* buffer_choice, int64_t rows, cudaStream_t stream);

// T: float, double, __nv_bfloat16, __half; W = acc_t<T> (double for double, float otherwise); weight may be null.
// out (rows, d) row r = c >= 0 ? scale * in[c / top_k] : 0, c = buffer_choice[r].
template <typename T, typename W>
cudaError_t moe_permute(const T* in, const int64_t* buffer_choice, const W* weight, int64_t rows, int64_t tokens,
                        int64_t top_k, int64_t d, T* out, cudaStream_t stream);
// out (tokens, d) row t = sum over kept j of scale * in[expert * capacity + slot]; in has `rows` rows.
template <typename T, typename W>
cudaError_t moe_unpermute(const T* in, const int64_t* expert, const int64_t* slot, const W* weight, int64_t tokens,
                          int64_t top_k, int64_t capacity, int64_t rows, int64_t d, T* out, cudaStream_t stream);
// grad_weight (tokens, k) = kept ? dot(grad_out[t], in[expert * capacity + slot]) : 0.
template <typename T, typename W>
cudaError_t moe_unpermute_weight_grad(const T* grad_out, const T* in, const int64_t* expert, const int64_t* slot,
                                      int64_t tokens, int64_t top_k, int64_t capacity, int64_t rows, int64_t d,
                                      W* grad_weight, cudaStream_t stream);

}  // namespace mt::gpu
