// MT_HOST_DEVICE: a function the CPU kernels and the CUDA kernels both compile (host and device
// under nvcc, plain inline elsewhere), so the two backends share one formula.
#pragma once

#if defined(__CUDACC__)
#define MT_HOST_DEVICE __host__ __device__ __forceinline__
#else
#define MT_HOST_DEVICE inline
#endif
