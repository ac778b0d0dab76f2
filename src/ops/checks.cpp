// Input checks shared by ops: messages name the op and both tensors' shapes, dtypes or devices.
#include "mt/ops/ops.h"

namespace mt {

void check_same_device(const char* op, const Tensor& a, const Tensor& b) {
  MT_CHECK(a.device() == b.device(), op, ": tensors on different devices: ", a.describe(), " and ", b.describe());
}

void check_same_dtype(const char* op, const Tensor& a, const Tensor& b) {
  MT_CHECK(a.dtype() == b.dtype(), op, ": dtypes differ: ", a.describe(), " and ", b.describe());
}

void check_same_shape(const char* op, const Tensor& a, const Tensor& b) {
  MT_CHECK(a.shape() == b.shape(), op, ": shapes differ: ", a.shape(), " and ", b.shape());
}

}  // namespace mt
