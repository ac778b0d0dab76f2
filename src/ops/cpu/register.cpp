// The CPU backend's slots in the kernel table: every slot of mt/ops/kernel_list.h has a CPU kernel
// (CI has no GPU; Note [Every backend fills every slot]).
#include "cpu_kernels.h"

namespace mt {

void register_cpu_kernels(KernelTable& t) {
#define MT_KERNEL(slot, Sig, category, ...) t.slot.cpu = cpu::slot;
#include "mt/ops/kernel_list.h"
}

}  // namespace mt
