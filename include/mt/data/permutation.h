// Deterministic permutations for the data loader: Fisher-Yates driven by SplitMix64, written out so
// that the order is the same on every platform and standard library (std::shuffle and the std
// distributions are implementation-defined).
#pragma once
#include <cstdint>
#include <vector>

namespace mt {

// SplitMix64 (Steele, Lea, Flood 2014): state += 0x9E3779B97F4A7C15, then a 64-bit mix.
class SplitMix64 {
 public:
  explicit SplitMix64(uint64_t seed) : state_(seed) {}
  uint64_t next();

 private:
  uint64_t state_;
};

// A uniform value in [0, n) from a 64-bit draw by multiply-high (Lemire); the bias is below n / 2^64.
uint64_t bounded(uint64_t draw, uint64_t n);

// Permutation of 0..n-1 for (seed, stream): Fisher-Yates from the top, i = n-1 .. 1, swapping
// i with bounded(next(), i + 1), where the generator starts at SplitMix64(seed ^ mix(stream)) and
// mix(x) is SplitMix64(x).next(). The loader uses the epoch as the stream.
std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, uint64_t stream);

}  // namespace mt
