// CUDA build of the device byte copies (host <-> device <-> device) on the current streams, device
// synchronisation, and GPU discovery. The host-only counterpart is src/core/device_copy_cpu.cpp.
#include <cstring>

#include "device_guard.h"
#include "mt/core/cuda_context.h"
#include "mt/core/device_copy.h"
#include "mt/core/host_sync_guard.h"

namespace mt {

int cuda_device_count() {
  // A machine without a driver or a GPU reports an error here: that means zero devices.
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear it so later checks do not see it
      n = 0;
    }
    return n;
  }();
  return count;
}

bool cuda_available() { return cuda_device_count() > 0; }

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  if (nbytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, nbytes);
    return;
  }
  HostSyncForbidden::check("a copy between the host and a device");
  // The copy runs on the stream of the GPU end (the destination's when both are GPUs), so it is
  // ordered after the kernels that wrote src or still read dst there.
  int device = dst_device.is_cuda() ? dst_device.index : src_device.index;
  if (src_device.is_cuda() && dst_device.is_cuda() && src_device.index != dst_device.index) {
    // Work pending on the source's stream must finish before another device's stream reads it.
    check_cuda_device(src_device.index);
    MT_CUDA_CHECK(cudaStreamSynchronize(current_stream(src_device.index)));
  }
  check_cuda_device(device);
  DeviceGuard guard(device);
  cudaStream_t stream = current_stream(device);
  MT_CUDA_CHECK(cudaMemcpyAsync(dst, src, nbytes, cudaMemcpyDefault, stream));
  MT_CUDA_CHECK(cudaStreamSynchronize(stream));
}

void synchronize(Device device) {
  HostSyncForbidden::check("a wait for the device (synchronize)");
  if (device.is_cpu()) return;
  check_cuda_device(device.index);
  DeviceGuard guard(device.index);
  MT_CUDA_CHECK(cudaDeviceSynchronize());  // every stream of the device, not only the compute one
}

}  // namespace mt
