// Declarations of the CPU kernels, one per slot of mt/ops/kernel_list.h (contracts there); the
// backend's *_cpu.cpp files define them (the list names which file holds each group).
#pragma once
#include "mt/ops/kernel_table.h"

namespace mt::cpu {

#define MT_KERNEL(slot, Sig, category, ...) Kernels::Sig slot;
#include "mt/ops/kernel_list.h"

}  // namespace mt::cpu
