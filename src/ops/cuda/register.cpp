// The CUDA backend's slots in the kernel table: every slot of mt/ops/kernel_list.h has a CUDA kernel
// (Note [Every backend fills every slot]); in a build without CUDA every CUDA slot stays empty and
// KernelSlot::get fails naming the op and the device.
#include "cuda_kernels.h"

namespace mt {

void register_cuda_kernels(KernelTable& t) {
#define MT_KERNEL(slot, Sig, category, ...) t.slot.cuda = cuda::slot;
#include "mt/ops/kernel_list.h"
}

}  // namespace mt
