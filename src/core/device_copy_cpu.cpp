// Host-only build of the device byte copies: any GPU endpoint is a clear error.
#ifndef MT_WITH_CUDA
#include <cstring>

#include "mt/core/device_copy.h"
#include "mt/core/error.h"
#include "mt/core/host_sync_guard.h"

namespace mt {

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes) {
  MT_CHECK(dst_device.is_cpu() && src_device.is_cpu(), "copy from ", src_device, " to ", dst_device,
           ": moetrain was built without CUDA");
  if (nbytes) std::memcpy(dst, src, nbytes);
}

void synchronize(Device) { HostSyncForbidden::check("a wait for the device (synchronize)"); }

bool cuda_available() { return false; }
int cuda_device_count() { return 0; }

}  // namespace mt
#endif
