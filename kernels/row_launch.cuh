// Launch shapes shared by the row-wise kernels (softmax, layernorm, cross-entropy): blockDim.x threads
// cooperate on one row and blockDim.y rows share a block; short rows get one warp each. Kernels that
// keep the whole row in registers give each thread up to kMaxRowPacks 16-byte packs of it.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <type_traits>

namespace mt::gpu {

struct RowLaunch {
  dim3 grid, block;
};

// `packs`: the number of vector packs in one row.
inline RowLaunch row_launch(int64_t rows, int64_t packs) {
  int tx = packs <= 512 ? 32 : packs <= 2048 ? 128 : packs <= 8192 ? 512 : 1024;
  int ty = tx == 32 ? 4 : 1;
  return {dim3(static_cast<unsigned>((rows + ty - 1) / ty)), dim3(tx, ty)};
}

// Packs one thread holds of a register-resident row, at most: 64 bytes of it.
constexpr int kMaxRowPacks = 4;

// Shape of a register-resident row kernel: thread t of a row holds the row's packs t + i * blockDim.x
// for i < packs_per_thread (1, 2 or 4); blocks of 128 threads when a row needs fewer.
struct RegisterRowLaunch {
  RowLaunch launch;
  int packs_per_thread;  // 0: the row does not fit in max_threads threads
};

// One warp per row while 32 * max_packs packs cover it, else the fewest power-of-two threads that do, up
// to max_threads (the kernel's launch bound). max_packs: 1, 2 or 4.
inline RegisterRowLaunch register_row_launch(int64_t rows, int64_t packs, int max_threads,
                                             int max_packs = kMaxRowPacks) {
  int tx = 32;
  while (static_cast<int64_t>(tx) * max_packs < packs && tx < max_threads) tx *= 2;
  if (static_cast<int64_t>(tx) * max_packs < packs) return {{}, 0};
  int p = 1;
  while (static_cast<int64_t>(tx) * p < packs) p *= 2;
  int ty = std::max(1, 128 / tx);
  return {{dim3(static_cast<unsigned>((rows + ty - 1) / ty)), dim3(tx, ty)}, p};
}

// Calls f(std::integral_constant<int, P>{}) with P = packs_per_thread (1, 2 or 4, at most MaxPacks: only
// those are instantiated); false if it is 0.
template <int MaxPacks = kMaxRowPacks, typename F>
bool dispatch_row_packs(int packs_per_thread, F&& f) {
  switch (packs_per_thread) {
    case 1: f(std::integral_constant<int, 1>{}); return true;
    case 2:
      if constexpr (MaxPacks >= 2) {
        f(std::integral_constant<int, 2>{});
        return true;
      }
      break;
    case 4:
      if constexpr (MaxPacks >= 4) {
        f(std::integral_constant<int, 4>{});
        return true;
      }
      break;
  }
  return false;
}

// Index in its row of this thread's i-th pack in a register-resident row kernel.
__device__ __forceinline__ int64_t row_pack(int i) { return threadIdx.x + static_cast<int64_t>(i) * blockDim.x; }

}  // namespace mt::gpu
