// The kernel table expands from mt/ops/kernel_list.h: every slot is registered by the CPU backend and,
// in a CUDA build, by the CUDA backend (Note [Every backend fills every slot]); registration only stores
// pointers, so this runs without a GPU.
#include <gtest/gtest.h>

#include "mt/ops/kernel_table.h"

namespace mt {
namespace {

TEST(KernelTable, EveryBackendFillsEverySlot) {
  const KernelTable& t = kernels();
  int slots = 0;
#define MT_KERNEL(slot, Sig, cat, ...)         \
  ++slots;                                      \
  EXPECT_NE(t.slot.cpu, nullptr) << #slot;      \
  EXPECT_EQ(t.slot.category, OpCategory::cat) << #slot;
#include "mt/ops/kernel_list.h"
#ifdef MT_WITH_CUDA
#define MT_KERNEL(slot, Sig, category, ...) EXPECT_NE(t.slot.cuda, nullptr) << #slot;
#include "mt/ops/kernel_list.h"
#else
#define MT_KERNEL(slot, Sig, category, ...) EXPECT_EQ(t.slot.cuda, nullptr) << #slot;
#include "mt/ops/kernel_list.h"
#endif
  EXPECT_EQ(static_cast<size_t>(slots) * sizeof(KernelSlot<Kernels::Fill>), sizeof(KernelTable));
}

TEST(KernelTable, EmptySlotNamesOpAndDevice) {
  KernelTable t;  // nothing registered
  try {
    t.fill.get(Device::cpu(), "fill");
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("fill: no kernel for device"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mt
