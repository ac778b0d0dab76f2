// Declarations of the CUDA kernels, one per slot of mt/ops/kernel_list.h (contracts there); the
// backend's *_cuda.cpp files define them (the list names which file holds each group).
#pragma once
#include "mt/ops/kernel_table.h"

namespace mt::cuda {

#define MT_KERNEL(slot, Sig, category, ...) Kernels::Sig slot;
#include "mt/ops/kernel_list.h"

}  // namespace mt::cuda
