// Byte copies between host and device memory (CUDA builds), and device synchronisation.
// Without CUDA only host-to-host copies exist and asking for a GPU is a clear error.
#pragma once
#include <cstddef>

#include "mt/core/device.h"

namespace mt {

// Copies nbytes from src (on src_device) to dst (on dst_device); waits for the copy to finish.
void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t nbytes);
void synchronize(Device device);

}  // namespace mt
