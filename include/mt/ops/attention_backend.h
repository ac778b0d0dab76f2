// Which implementation runs causal attention on CUDA for bf16 / f16, and which one ran: cuDNN's fused
// SDPA (src/ops/cuda/cudnn_attention.cpp) or our own kernels (kernels/flash_attention.cu, attention.cu).
// f32 / f64 attention and CPU attention always run our own kernels. MT_ATTENTION=auto|cudnn|flash and
// MT_ATTENTION_DETERMINISTIC=1|0 set the initial values (defaults: auto, 1).
#pragma once
#include <cstdint>

namespace mt {

enum class AttentionBackend {
  kAuto,   // cuDNN where it builds a plan for the shape, else our kernels (a one-time message per shape)
  kCudnn,  // cuDNN only: a bf16 / f16 case it cannot take is an error saying why (tests, benchmarks)
  kFlash,  // our kernels only
};

// Note [Deterministic attention backward]: cuDNN's fastest backward adds dQ with f32 atomics, so its bits
// vary from run to run, which breaks bit-exact resume (Note [Determinism] in src/train/trainer.cpp).
// kRequired (the default) asks cuDNN for its deterministic variant (dQ written by one GEMM, no atomics);
// kNotRequired takes the atomic one. Our own kernels are deterministic either way.
enum class Determinism { kRequired, kNotRequired };

void set_attention_backend(AttentionBackend backend);
AttentionBackend attention_backend();
void set_attention_determinism(Determinism determinism);
Determinism attention_determinism();
const char* attention_backend_name(AttentionBackend backend);  // "auto", "cudnn", "flash"

// How many bf16 / f16 CUDA attention calls each implementation ran in this process (tests check that
// cuDNN really ran; a fallback shows up here and in the one-time message). "own": our kernels.
struct AttentionCounts {
  int64_t cudnn_forward = 0, cudnn_backward = 0, own_forward = 0, own_backward = 0;
};
enum class AttentionPass { kForward, kBackward };
AttentionCounts attention_counts();
// Called by the CUDA attention op; `ran` is kCudnn or kFlash (our kernels).
void count_attention(AttentionBackend ran, AttentionPass pass);

}  // namespace mt
