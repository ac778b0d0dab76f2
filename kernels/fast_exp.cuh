// The hardware's f32 2^x (ex2.approx: relative error about 2^-22, no range fix-ups) for bandwidth-bound
// kernels whose results are rounded to bf16/f16 or summed into a logsumexp, where expf's extra
// instructions would make them compute-bound on Hopper.
#pragma once

namespace mt::gpu {

constexpr float kLog2e = 1.4426950408889634f;
constexpr float kLn2 = 0.6931471805599453f;

// 2^x; 2^-inf = 0, 2^inf = inf, results below 2^-126 flush to 0.
__device__ __forceinline__ float ex2_approx(float x) {
  float y;
  asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
  return y;
}

// e^x as one multiply and ex2.approx for f32 (relative error under 1e-5 for |x| < 100, e^-inf = 0, NaN
// stays NaN); exp for f64.
__device__ __forceinline__ float exp_fast(float x) { return ex2_approx(x * kLog2e); }
__device__ __forceinline__ double exp_fast(double x) { return exp(x); }

}  // namespace mt::gpu
