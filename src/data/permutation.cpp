// SplitMix64 and the seeded Fisher-Yates permutation of the data loader.
#include "mt/data/permutation.h"

#include <numeric>
#include <utility>

namespace mt {

uint64_t SplitMix64::next() {
  uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

uint64_t bounded(uint64_t draw, uint64_t n) {
  return static_cast<uint64_t>((static_cast<unsigned __int128>(draw) * n) >> 64);
}

std::vector<int64_t> shuffled_indices(int64_t n, uint64_t seed, uint64_t stream) {
  std::vector<int64_t> order(n);
  std::iota(order.begin(), order.end(), int64_t{0});
  SplitMix64 rng(seed ^ SplitMix64(stream).next());
  for (int64_t i = n - 1; i > 0; --i) std::swap(order[i], order[bounded(rng.next(), static_cast<uint64_t>(i) + 1)]);
  return order;
}

}  // namespace mt
