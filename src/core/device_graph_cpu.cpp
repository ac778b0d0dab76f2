// Host-only build of DeviceGraph: there are no CUDA graphs, so asking for one is a clear error.
#ifndef MT_WITH_CUDA
#include "mt/core/device_graph.h"
#include "mt/core/error.h"

namespace mt {

struct DeviceGraph::Exec {};

DeviceGraph::DeviceGraph(Device device, const void*, const std::function<void()>&) : device_(device) {
  MT_FAIL("a CUDA graph on ", device, ": moetrain was built without CUDA");
}

bool capturing(Device) { return false; }

DeviceGraph::~DeviceGraph() = default;

void DeviceGraph::replay() { MT_FAIL("a CUDA graph on ", device_, ": moetrain was built without CUDA"); }

}  // namespace mt
#endif
