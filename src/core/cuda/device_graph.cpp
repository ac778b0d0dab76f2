// DeviceGraph (device_graph.h) on CUDA: relaxed-mode stream capture of the compute stream, with the
// caching allocator switched to the caller's graph pool for the capture, then one instantiated graph.
#include <cuda_runtime.h>

#include "device_guard.h"
#include "mt/core/cuda_context.h"
#include "mt/core/device_graph.h"

namespace mt {

struct DeviceGraph::Exec {
  cudaGraphExec_t exec = nullptr;
};

DeviceGraph::DeviceGraph(Device device, const void* pool, const std::function<void()>& queue)
    : device_(device), exec_(std::make_unique<Exec>()) {
  MT_CHECK(device.is_cuda(), "a CUDA graph needs a CUDA device, got ", device);
  DeviceGuard guard(device.index);
  cudaStream_t stream = current_stream(device.index);
  // Relaxed: the capture may allocate (cudaMalloc of a new segment) and write tables outside the stream.
  MT_CUDA_CHECK(cudaStreamBeginCapture(stream, cudaStreamCaptureModeRelaxed));
  set_graph_pool(device.index, pool);
  cudaGraph_t graph = nullptr;
  try {
    queue();
  } catch (...) {
    set_graph_pool(device.index, nullptr);
    if (cudaStreamEndCapture(stream, &graph) == cudaSuccess && graph) cudaGraphDestroy(graph);
    cudaGetLastError();  // a refused call inside the capture leaves its error behind
    throw;
  }
  set_graph_pool(device.index, nullptr);
  MT_CUDA_CHECK(cudaStreamEndCapture(stream, &graph));
  const cudaError_t made = cudaGraphInstantiate(&exec_->exec, graph, 0);
  cudaGraphDestroy(graph);
  MT_CUDA_CHECK(made);
}

bool capturing(Device device) {
  if (!device.is_cuda()) return false;
  cudaStreamCaptureStatus status = cudaStreamCaptureStatusNone;
  MT_CUDA_CHECK(cudaStreamIsCapturing(current_stream(device.index), &status));
  return status != cudaStreamCaptureStatusNone;
}

DeviceGraph::~DeviceGraph() {
  if (exec_ && exec_->exec) cudaGraphExecDestroy(exec_->exec);
}

void DeviceGraph::replay() {
  DeviceGuard guard(device_.index);
  MT_CUDA_CHECK(cudaGraphLaunch(exec_->exec, current_stream(device_.index)));
}

}  // namespace mt
