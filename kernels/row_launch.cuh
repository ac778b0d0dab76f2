// Launch shape shared by the row-wise kernels (softmax, layernorm, cross-entropy): blockDim.x threads
// cooperate on one row and blockDim.y rows share a block; short rows get one warp each.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

namespace mt::gpukernels {

struct RowLaunch {
  dim3 grid, block;
};

// `packs`: the number of vector packs in one row.
inline RowLaunch row_launch(int64_t rows, int64_t packs) {
  int tx = packs <= 512 ? 32 : packs <= 2048 ? 128 : packs <= 8192 ? 512 : 1024;
  int ty = tx == 32 ? 4 : 1;
  return {dim3(static_cast<unsigned>((rows + ty - 1) / ty)), dim3(tx, ty)};
}

}  // namespace mt::gpukernels
