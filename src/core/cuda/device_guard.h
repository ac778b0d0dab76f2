// Private to src/core/cuda: an RAII guard that makes a device current for a scope and restores the
// previous one, and the device-index check shared by the CUDA core files.
#pragma once
#ifdef MT_WITH_CUDA

namespace mt {

// Throws naming the index and the visible device count unless 0 <= device < cuda_device_count().
void check_cuda_device(int device);

class DeviceGuard {
 public:
  explicit DeviceGuard(int device);
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = 0;
};

}  // namespace mt
#endif
