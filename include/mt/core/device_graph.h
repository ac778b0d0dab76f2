// DeviceGraph: device work captured once from a device's compute stream as a CUDA graph and replayed with
// one launch (Note [The captured step], mt/train/train_step.h). Allocations made while capturing come from
// the pool the caller names (set_graph_pool in cuda_context.h). CUDA devices only.
#pragma once
#include <functional>
#include <memory>

#include "mt/core/device.h"

namespace mt {

// Whether work queued on `device` now is being captured into a graph rather than run (false on the CPU).
bool capturing(Device device);

class DeviceGraph {
 public:
  // Captures the device work `queue` queues on `device` (nothing runs); allocations come from the pool
  // keyed by `pool`. Throws, with the reason, when `queue` throws or CUDA refuses the capture.
  DeviceGraph(Device device, const void* pool, const std::function<void()>& queue);
  ~DeviceGraph();
  DeviceGraph(const DeviceGraph&) = delete;
  DeviceGraph& operator=(const DeviceGraph&) = delete;

  // Queues the captured work on the compute stream.
  void replay();

 private:
  struct Exec;
  Device device_;
  std::unique_ptr<Exec> exec_;
};

}  // namespace mt
