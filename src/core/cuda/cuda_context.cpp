// Per-device CUDA state behind cuda_context.h: the compute stream, the cuBLASLt and cuDNN handles
// and the grow-only workspace, each created on first use; and CudaEvent.
// Note [CUDA singletons live until exit]: per-device state is allocated once and never destroyed,
// because at static-destruction time the CUDA runtime may already be torn down (as PyTorch does).
#include <memory>
#include <mutex>
#include <vector>

#include "device_guard.h"
#include "mt/core/cuda_context.h"
#include "mt/core/storage.h"

namespace mt {

Allocator& cuda_caching_allocator(int device);  // caching_allocator.cpp

namespace {

struct DeviceState {
  std::mutex mu;            // stream and handles
  std::mutex workspace_mu;  // separate: growing the workspace allocates, which asks for the stream
  cudaStream_t stream = nullptr;
  cublasLtHandle_t cublaslt = nullptr;
  cudnnHandle_t cudnn = nullptr;
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

// One state per visible device (see Note [CUDA singletons live until exit]).
DeviceState& state(int device) {
  static std::vector<DeviceState*>* states = [] {
    auto* v = new std::vector<DeviceState*>();
    for (int i = 0; i < cuda_device_count(); ++i) v->push_back(new DeviceState());
    return v;
  }();
  check_cuda_device(device);
  return *(*states)[device];
}

cudaStream_t stream_locked(DeviceState& s, int device) {
  if (!s.stream) {
    DeviceGuard guard(device);
    MT_CUDA_CHECK(cudaStreamCreateWithFlags(&s.stream, cudaStreamNonBlocking));
  }
  return s.stream;
}

}  // namespace

void check_cuda_device(int device) {
  int n = cuda_device_count();
  MT_CHECK(device >= 0 && device < n, "device cuda:", device, " requested but ", n, " CUDA device(s) are visible");
}

DeviceGuard::DeviceGuard(int device) {
  MT_CUDA_CHECK(cudaGetDevice(&previous_));
  if (previous_ != device) MT_CUDA_CHECK(cudaSetDevice(device));
}

DeviceGuard::~DeviceGuard() {
  int now = -1;
  if (cudaGetDevice(&now) == cudaSuccess && now != previous_) cudaSetDevice(previous_);
}

cudaStream_t current_stream(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  return stream_locked(s, device);
}

void set_device(int device) {
  check_cuda_device(device);
  MT_CUDA_CHECK(cudaSetDevice(device));
}

cublasLtHandle_t cublaslt_handle(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.cublaslt) {
    DeviceGuard guard(device);
    MT_CUBLAS_CHECK(cublasLtCreate(&s.cublaslt));
  }
  return s.cublaslt;
}

cudnnHandle_t cudnn_handle(int device) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.mu);
  if (!s.cudnn) {
    cudaStream_t stream = stream_locked(s, device);
    DeviceGuard guard(device);
    MT_CUDNN_CHECK(cudnnCreate(&s.cudnn));
    MT_CUDNN_CHECK(cudnnSetStream(s.cudnn, stream));
  }
  return s.cudnn;
}

void* cuda_workspace(int device, size_t bytes) {
  DeviceState& s = state(device);
  std::lock_guard<std::mutex> lock(s.workspace_mu);
  if (bytes > s.workspace_bytes || !s.workspace) {
    cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
    MT_CUDA_CHECK(cudaStreamIsCapturing(current_stream(device), &capture));
    MT_CHECK(capture == cudaStreamCaptureStatusNone, "the cuda:", device, " workspace would grow from ",
             s.workspace_bytes, " to ", bytes, " bytes during a CUDA graph capture (the warm-up did not reach it)");
    constexpr size_t kGranule = size_t{1} << 20;
    size_t want = (std::max<size_t>(bytes, 1) + kGranule - 1) / kGranule * kGranule;
    Allocator& alloc = cuda_caching_allocator(device);
    // The old block goes back to the cache on the same stream, so kernels still reading it
    // finish before any reuse (stream order).
    if (s.workspace) alloc.deallocate(s.workspace, s.workspace_bytes);
    s.workspace = nullptr;
    s.workspace_bytes = 0;
    s.workspace = alloc.allocate(want);
    s.workspace_bytes = want;
  }
  return s.workspace;
}

CudaEvent::CudaEvent() { MT_CUDA_CHECK(cudaEventCreate(&event_)); }

CudaEvent::~CudaEvent() {
  if (event_) cudaEventDestroy(event_);
}

void CudaEvent::record(cudaStream_t stream) { MT_CUDA_CHECK(cudaEventRecord(event_, stream)); }

void CudaEvent::synchronize() const { MT_CUDA_CHECK(cudaEventSynchronize(event_)); }

float CudaEvent::elapsed_ms(const CudaEvent& later) const {
  float ms = 0.0f;
  MT_CUDA_CHECK(cudaEventElapsedTime(&ms, event_, later.event_));
  return ms;
}

}  // namespace mt
