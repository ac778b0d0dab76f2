// Tensor methods that call ops: conversions (to), the deep copy (clone) and the in-place copy
// (copy_). Declared in mt/core/tensor.h, defined here because core sits below ops; see
// Note [Layer order] in tests/cli/layer_order_test.sh.
#include "mt/core/device_copy.h"
#include "mt/core/tensor.h"
#include "mt/graph/grad_mode.h"
#include "mt/graph/node.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/ops.h"

namespace mt {

Tensor Tensor::clone() const { return cast(*this, dtype()); }  // cast always copies

Tensor Tensor::to(DType dt) const {
  if (dt == dtype()) return *this;
  return cast(*this, dt);
}

Tensor Tensor::to(Device dev) const {
  if (dev == device()) return *this;
  Tensor src = detach().contiguous();
  Tensor out = empty(shape(), dtype(), dev);
  copy_bytes(out.data_ptr(), dev, src.data_ptr(), src.device(), nbytes());
  if (requires_grad() && grad_mode_enabled()) {
    Device from = device();
    record_function("ToDeviceBackward", {*this}, {out},
                    [from](const std::vector<Tensor>& g) { return std::vector<Tensor>{g[0].to(from)}; });
  }
  return out;
}

void Tensor::copy_(const Tensor& src) const {
  MT_CHECK(!(requires_grad() && grad_mode_enabled()), "copy_: in-place copy into a tensor that requires grad");
  Tensor s = src.detach();
  if (s.device() != device()) s = s.to(device());
  s = s.expand(shape());
  kernels().copy.get(device(), "copy_")(s, detach());
  bump_version();
}

}  // namespace mt
