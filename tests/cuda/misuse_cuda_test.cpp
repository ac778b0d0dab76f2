// Misuse across devices: mixing a CPU and a CUDA tensor names both devices (skipped without a GPU).
#include <gtest/gtest.h>

#include "mt/core/device.h"
#include "mt/ops/ops.h"

using namespace mt;

TEST(CudaMisuse, MixedDevicesNameBothDevices) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: the CUDA case runs on GPU machines (scripts/gpu-test.sh)";
  Tensor a = ones({2, 3}), b = ones({2, 3}, {DType::kF32, Device::cuda(0)});
  for (auto op : {+[](const Tensor& x, const Tensor& y) { return add(x, y); },
                  +[](const Tensor& x, const Tensor& y) { return linear(x, y); }}) {
    try {
      op(a, b);
      FAIL() << "expected an error";
    } catch (const Error& e) {
      std::string m = e.what();
      EXPECT_NE(m.find("cpu"), std::string::npos) << m;
      EXPECT_NE(m.find("cuda:0"), std::string::npos) << m;
    }
  }
}
