// CUDA-only core services (include only under MT_WITH_CUDA): per-device current stream,
// library handles (cuBLASLt, cuDNN) with their workspaces, events, and status-checking macros.
#pragma once
#ifdef MT_WITH_CUDA
#include <cublasLt.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "mt/core/error.h"

#define MT_CUDA_CHECK(expr)                                                                    \
  do {                                                                                         \
    cudaError_t mt_err_ = (expr);                                                              \
    MT_CHECK(mt_err_ == cudaSuccess, "CUDA error ", cudaGetErrorName(mt_err_), ": ",          \
             cudaGetErrorString(mt_err_), " in ", #expr);                                      \
  } while (0)
#define MT_CUBLAS_CHECK(expr)                                                                  \
  do {                                                                                         \
    cublasStatus_t mt_st_ = (expr);                                                            \
    MT_CHECK(mt_st_ == CUBLAS_STATUS_SUCCESS, "cuBLAS error ", static_cast<int>(mt_st_), " in ", #expr); \
  } while (0)
#define MT_CUDNN_CHECK(expr)                                                                   \
  do {                                                                                         \
    cudnnStatus_t mt_st_ = (expr);                                                             \
    MT_CHECK(mt_st_ == CUDNN_STATUS_SUCCESS, "cuDNN error ", cudnnGetErrorString(mt_st_), " in ", #expr); \
  } while (0)

namespace mt {

// The stream all ops on `device` are issued to (one compute stream per device, created lazily).
cudaStream_t current_stream(int device);
// Makes `device` current for the calling thread.
void set_device(int device);
cublasLtHandle_t cublaslt_handle(int device);
cudnnHandle_t cudnn_handle(int device);  // bound to current_stream(device)
// A per-device workspace of at least `bytes` (grown on demand; valid until the next call). It may not
// grow while the compute stream is being captured (captured work would keep the freed one).
void* cuda_workspace(int device, size_t bytes);
// Note [The captured step] (mt/train/train_step.h): while a graph pool is set for `device`, the caching
// allocator serves its requests from a pool of their own, keyed by `pool` (an address unique to the graph's
// owner), and a block of that pool returns to it when freed: memory a captured graph uses is never handed
// to work queued between its replays. nullptr: back to the compute stream's pool.
void set_graph_pool(int device, const void* pool);
const void* graph_pool(int device);  // the pool set now, or nullptr
// While one lives, allocations on `device` bypass its graph pool: for memory the host writes once during a
// capture (the optimizer's tables), which the captured work, reusing its pool's blocks, would overwrite.
class GraphPoolPause {
 public:
  explicit GraphPoolPause(int device) : device_(device), pool_(graph_pool(device)) { set_graph_pool(device, nullptr); }
  ~GraphPoolPause() { set_graph_pool(device_, pool_); }
  GraphPoolPause(const GraphPoolPause&) = delete;
  GraphPoolPause& operator=(const GraphPoolPause&) = delete;

 private:
  int device_;
  const void* pool_;
};

// RAII CUDA event for timing and cross-stream ordering.
class CudaEvent {
 public:
  CudaEvent();
  ~CudaEvent();
  CudaEvent(const CudaEvent&) = delete;
  CudaEvent& operator=(const CudaEvent&) = delete;
  void record(cudaStream_t stream);
  void synchronize() const;
  float elapsed_ms(const CudaEvent& later) const;
  cudaEvent_t get() const { return event_; }

 private:
  cudaEvent_t event_ = nullptr;
};

}  // namespace mt
#endif
