// Scalar formulas shared by the CPU and CUDA kernels (host and device), so both backends
// compute the same functions: unary ops and their derivatives, binary ops.
#pragma once
#include <cmath>

#include "mt/math/philox.h"  // MT_HOST_DEVICE, philox_uniform

namespace mt::math {

template <typename T> MT_HOST_DEVICE T gelu(T x) {
  const T k = T(0.7978845608028654);  // sqrt(2/pi)
  return T(0.5) * x * (T(1) + std::tanh(k * (x + T(0.044715) * x * x * x)));
}
template <typename T> MT_HOST_DEVICE T gelu_grad(T x) {
  const T k = T(0.7978845608028654);
  T t = std::tanh(k * (x + T(0.044715) * x * x * x));
  return T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * k * (T(1) + T(3) * T(0.044715) * x * x);
}
template <typename T> MT_HOST_DEVICE T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T> MT_HOST_DEVICE T silu(T x) { return x * sigmoid(x); }
template <typename T> MT_HOST_DEVICE T silu_grad(T x) {
  T s = sigmoid(x);
  return s * (T(1) + x * (T(1) - s));
}

// op codes mirror mt::UnaryOp / UnaryGradOp / BinaryOp (kernel_table.h) so kernels/ needs no framework header.
template <typename T> MT_HOST_DEVICE T unary(int op, T x, T alpha) {
  switch (op) {
    case 0: return -x;
    case 1: return std::exp(x);
    case 2: return std::log(x);
    case 3: return std::sqrt(x);
    case 4: return T(1) / std::sqrt(x);
    case 5: return std::tanh(x);
    case 6: return x > T(0) ? x : T(0);
    case 7: return gelu(x);
    case 8: return silu(x);
    case 9: return sigmoid(x);
    case 10: return x < T(0) ? -x : x;
    case 11: return std::pow(x, alpha);
    case 12: return x * alpha;
    case 13: return x + alpha;
  }
  return x;
}

template <typename T> MT_HOST_DEVICE T unary_grad(int op, T g, T x) {
  switch (op) {
    case 0: { T t = std::tanh(x); return g * (T(1) - t * t); }
    case 1: return x > T(0) ? g : T(0);
    case 2: return g * gelu_grad(x);
    case 3: return g * silu_grad(x);
    case 4: { T s = sigmoid(x); return g * s * (T(1) - s); }
  }
  return g;
}

// Arithmetic binary ops (codes 0..6); comparisons (7..12) are in binary_compare.
template <typename T> MT_HOST_DEVICE T binary(int op, T a, T b) {
  switch (op) {
    case 0: return a + b;
    case 1: return a - b;
    case 2: return a * b;
    case 3: return a / b;
    case 4: return std::pow(a, b);
    case 5: return a >= b ? a : b;
    case 6: return a <= b ? a : b;
  }
  return a;
}

template <typename T> MT_HOST_DEVICE bool binary_compare(int op, T a, T b) {
  switch (op) {
    case 7: return a == b;
    case 8: return a != b;
    case 9: return a < b;
    case 10: return a <= b;
    case 11: return a > b;
    case 12: return a >= b;
  }
  return false;
}

// Box-Muller on two Philox uniforms: element i uses draws 2i and 2i+1.
MT_HOST_DEVICE float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  float u1 = philox_uniform(seed, offset + 2 * i);
  float u2 = philox_uniform(seed, offset + 2 * i + 1);
  float r = sqrtf(-2.0f * logf(1.0f - u1));  // 1 - u1 in (0, 1]
  return r * cosf(6.283185307179586f * u2);
}

}  // namespace mt::math
