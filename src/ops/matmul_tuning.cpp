// The matmul autotune switch (read by src/ops/cuda/matmul_cuda.cpp), initialised from MT_MATMUL_AUTOTUNE.
#include "mt/ops/matmul_tuning.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

namespace mt {

namespace {
std::atomic<bool>& autotune_flag() {
  static std::atomic<bool> flag{[] {
    const char* v = std::getenv("MT_MATMUL_AUTOTUNE");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }()};
  return flag;
}
}  // namespace

void set_matmul_autotune(bool on) { autotune_flag().store(on); }
bool matmul_autotune() { return autotune_flag().load(); }

}  // namespace mt
