// Philox4x32-10 counter-based RNG, usable from host and device code, so CPU and CUDA kernels
// produce the same numbers for the same (seed, counter). One counter yields 4 uint32 values.
#pragma once
#include <cstdint>

#include "mt/math/host_device.h"

namespace mt {

struct Philox4 {
  uint32_t v[4];
};

MT_HOST_DEVICE Philox4 philox4x32(uint64_t seed, uint64_t counter) {
  uint32_t c0 = static_cast<uint32_t>(counter), c1 = static_cast<uint32_t>(counter >> 32), c2 = 0, c3 = 0;
  uint32_t k0 = static_cast<uint32_t>(seed), k1 = static_cast<uint32_t>(seed >> 32);
  for (int r = 0; r < 10; ++r) {
    uint64_t p0 = static_cast<uint64_t>(0xD2511F53u) * c0;
    uint64_t p1 = static_cast<uint64_t>(0xCD9E8D57u) * c2;
    uint32_t n0 = static_cast<uint32_t>(p1 >> 32) ^ c1 ^ k0;
    uint32_t n1 = static_cast<uint32_t>(p1);
    uint32_t n2 = static_cast<uint32_t>(p0 >> 32) ^ c3 ^ k1;
    uint32_t n3 = static_cast<uint32_t>(p0);
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u;
    k1 += 0xBB67AE85u;
  }
  return {{c0, c1, c2, c3}};
}

// Element i of a stream: counter i/4, lane i%4.
MT_HOST_DEVICE uint32_t philox_u32(uint64_t seed, uint64_t i) { return philox4x32(seed, i >> 2).v[i & 3]; }

// Uniform in [0, 1) with 24 random bits (exactly representable in f32).
MT_HOST_DEVICE float philox_uniform(uint64_t seed, uint64_t i) {
  return static_cast<float>(philox_u32(seed, i) >> 8) * (1.0f / 16777216.0f);
}

}  // namespace mt
