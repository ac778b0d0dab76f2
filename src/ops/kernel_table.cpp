// The kernel table, filled once on first use from each backend's registration file.
#include "mt/ops/kernel_table.h"

namespace mt {

const KernelTable& kernels() {
  static const KernelTable table = [] {
    KernelTable t;
    register_cpu_kernels(t);
#ifdef MT_WITH_CUDA
    register_cuda_kernels(t);
#endif
    return t;
  }();
  return table;
}

}  // namespace mt
