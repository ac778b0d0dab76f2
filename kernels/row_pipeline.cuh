// Warp-per-row pipeline shared by the row kernels (layer norm, softmax) for rows of at most 32 * 4 whole
// 16-byte packs: a persistent grid of kPipeWarps-warp blocks whose warps stride over the rows, each warp
// copying its next rows kPipeStages - 1 ahead into its own shared-memory stages with cp.async, so many
// bytes per SM are in flight without holding rows in registers and without block-wide synchronisation.
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "device_utils.cuh"
#include "tensor_core.cuh"

namespace mt::gpu {

constexpr int kPipeWarps = 4;
constexpr int kPipeStages = 4;
constexpr int kPipeMaxPacks = 4;  // packs per lane: rows of up to 128 packs

// Bytes of one warp's stage: `tensors` rows of `packs` packs, then 16 bytes for the row's scalars.
__host__ __device__ inline size_t pipe_stage_bytes(int64_t packs, int tensors) {
  return static_cast<size_t>(tensors * packs) * 16 + 16;
}

// Dynamic shared memory of a pipelined block.
inline size_t pipe_smem_bytes(int64_t packs, int tensors) {
  return kPipeWarps * kPipeStages * pipe_stage_bytes(packs, tensors);
}

// Packs per lane (1, 2 or 4) for rows of `packs` packs; 0 when a row has more than 32 * kPipeMaxPacks.
inline int pipe_packs_per_lane(int64_t packs) {
  int p = 1;
  while (32 * p < packs) p *= 2;
  return p <= kPipeMaxPacks ? p : 0;
}

// Lane l of a warp stages tensor t's packs l + 32 i (i < P) of one row, and the row's Scalars (0, 1 or 2)
// values of type S (mean and rstd, say) from scalar0[row] and scalar1[row]. run(f) calls f(row, stage) for each of the warp's
// rows; stage.has(i) says whether pack i exists, stage.pack(t, i) reads it (only where it exists),
// stage.scalar(k) reads a scalar. A stage stays valid until f returns; a lane reads only its own packs.
template <typename T, int P, int Tensors, typename S = float, int Scalars = 0>
class WarpRowPipeline {
 public:
  static constexpr int V = kPack<T>;
  static_assert(Scalars <= 2 && Scalars * sizeof(S) <= 16, "the row's scalars fit the stage's last 16 bytes");

  class Stage {
   public:
    __device__ Stage(const unsigned char* s, int64_t packs, int lane) : s_(s), packs_(packs), lane_(lane) {}
    __device__ bool has(int i) const { return lane_ + 32 * i < packs_; }
    __device__ Pack<T, V> pack(int t, int i) const {
      return *reinterpret_cast<const Pack<T, V>*>(s_ + (t * packs_ + lane_ + 32 * i) * 16);
    }
    __device__ S scalar(int k) const { return reinterpret_cast<const S*>(s_ + Tensors * packs_ * 16)[k]; }

   private:
    const unsigned char* s_;
    int64_t packs_;
    int lane_;
  };

  // smem: this block's dynamic shared memory, pipe_smem_bytes(cols / V, Tensors) bytes.
  __device__ WarpRowPipeline(unsigned char* smem, const T* const (&src)[Tensors], int64_t rows, int64_t cols,
                             const S* scalar0 = nullptr, const S* scalar1 = nullptr)
      : lane_(threadIdx.x % 32),
        rows_(rows),
        cols_(cols),
        packs_(cols / V),
        stage_bytes_(pipe_stage_bytes(cols / V, Tensors)),
        mine_(smem + (threadIdx.x / 32) * kPipeStages * stage_bytes_),
        scalar0_(scalar0),
        scalar1_(scalar1) {
    for (int t = 0; t < Tensors; ++t) src_[t] = src[t];
  }

  template <typename F>
  __device__ void run(F&& f) {
    const int64_t first = static_cast<int64_t>(blockIdx.x) * kPipeWarps + threadIdx.x / 32;
    const int64_t step = static_cast<int64_t>(gridDim.x) * kPipeWarps;
#pragma unroll
    for (int k = 0; k < kPipeStages - 1; ++k) issue(first + k * step, k);
    int stage = 0;
    for (int64_t row = first; row < rows_; row += step) {
      issue(row + (kPipeStages - 1) * step, (stage + kPipeStages - 1) % kPipeStages);
      cp_async_wait<kPipeStages - 1>();
      __syncwarp();  // the first lanes' scalar copies are visible to the warp
      f(row, Stage(mine_ + stage * stage_bytes_, packs_, lane_));
      __syncwarp();  // every lane is done with this stage before the first lanes refill its scalars
      stage = (stage + 1) % kPipeStages;
    }
    cp_async_wait<0>();  // the trailing (zero-filling) copies land before the stages are reused or the block exits
  }

 private:
  // Copies row `row` (zeros past the last row) into stage `stage` and commits it as one group.
  __device__ void issue(int64_t row, int stage) {
    unsigned char* s = mine_ + stage * stage_bytes_;
    bool active = row < rows_;
    int bytes = active ? 16 : 0;
#pragma unroll
    for (int i = 0; i < P; ++i) {
      int64_t p = lane_ + 32 * i;
      if (p >= packs_) continue;
      int64_t off = active ? row * cols_ + p * V : 0;
#pragma unroll
      for (int t = 0; t < Tensors; ++t) cp_async_16(smem_addr(s + (t * packs_ + p) * 16), src_[t] + off, bytes);
    }
    if constexpr (Scalars > 0) {
      constexpr int kWordsEach = static_cast<int>(sizeof(S)) / 4;
      if (lane_ < Scalars * kWordsEach) {
        const S* src = lane_ < kWordsEach ? scalar0_ : scalar1_;  // not an indexed array: it would live in local memory
        const uint32_t* word = reinterpret_cast<const uint32_t*>(src + (active ? row : 0)) + lane_ % kWordsEach;
        cp_async_4(smem_addr(s + Tensors * packs_ * 16 + lane_ * 4), word, active ? 4 : 0);
      }
    }
    cp_async_commit();
  }

  int lane_;
  int64_t rows_, cols_, packs_;
  size_t stage_bytes_;
  unsigned char* mine_;
  const T* src_[Tensors];
  const S *scalar0_, *scalar1_;
};

// Blocks of a pipelined kernel with `smem` bytes of dynamic shared memory: as many as fit on the device at
// once, at most max_per_sm per multiprocessor and `limit` in all; 0 when none fits (the caller takes
// another path).
template <typename Kernel>
cudaError_t pipelined_blocks(Kernel kernel, size_t smem, int64_t limit, unsigned& blocks, int max_per_sm = 32) {
  blocks = 0;
  int device = 0, sms = 0, per_sm = 0;
  cudaError_t e = cudaGetDevice(&device);
  if (e == cudaSuccess) e = cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, device);
  if (e == cudaSuccess)
    e = cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
  if (e != cudaSuccess) {  // more shared memory than the device allows a block
    cudaGetLastError();
    return cudaSuccess;
  }
  e = cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kernel, 32 * kPipeWarps, smem);
  if (e != cudaSuccess) return e;
  blocks = static_cast<unsigned>(std::min<int64_t>(int64_t{std::min(per_sm, max_per_sm)} * sms, limit));
  return cudaSuccess;
}

// Where and how wide a pipelined kernel runs: `smem` bytes of dynamic shared memory per block, at most
// `limit` blocks in all and max_per_sm per multiprocessor.
struct PipeGrid {
  size_t smem;
  int64_t limit;
  int max_per_sm = 32;
};

// Launches `kernel` with `args` on as many blocks as fit within `grid`, setting `blocks`; blocks = 0
// (nothing launched) when none fits, and the caller takes another path.
template <typename Kernel, typename... Args>
cudaError_t launch_pipelined(Kernel kernel, const PipeGrid& grid, cudaStream_t stream, unsigned& blocks, Args... args) {
  cudaError_t e = pipelined_blocks(kernel, grid.smem, grid.limit, blocks, grid.max_per_sm);
  if (e == cudaSuccess && blocks > 0) kernel<<<blocks, 32 * kPipeWarps, grid.smem, stream>>>(args...);
  return e;
}

}  // namespace mt::gpu
