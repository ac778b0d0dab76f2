// Tensor: construction, host access, autograd accessors. The methods that call ops or the engine
// are defined above core: to, clone, copy_ in src/ops/tensor_methods.cpp, the views in
// src/ops/view_ops.cpp, backward in src/autograd/tensor_backward.cpp (Note [Layer order]).
#include "mt/core/tensor.h"

#include <cstring>
#include <sstream>

#include "mt/core/host_sync_guard.h"

namespace mt {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) MT_CHECK(d >= 0, "empty: negative dimension in shape ", shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<StorageImpl>(shape.numel() * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::make_view(Storage storage, const Shape& shape, const Shape& strides, int64_t offset, DType dtype) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::move(storage);
  impl->shape = shape;
  impl->strides = strides;
  impl->offset = offset;
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

template <typename T>
Tensor Tensor::from_vector(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  MT_CHECK(static_cast<int64_t>(values.size()) == shape.numel(), "from_vector: ", values.size(),
           " values for shape ", shape, " (", shape.numel(), " elements)");
  HostSyncForbidden::check("a tensor made from host values (from_vector)");
  Tensor host = empty(shape, dtype_of<T>::value, Device::cpu());
  if constexpr (std::is_same_v<T, bool>) {  // std::vector<bool> is packed
    for (size_t i = 0; i < values.size(); ++i) host.data<bool>()[i] = values[i];
  } else if (!values.empty()) {
    std::memcpy(host.data_ptr(), values.data(), values.size() * sizeof(T));
  }
  return host.to(dtype).to(device);
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  HostSyncForbidden::check("a read of tensor values on the host (item or to_vector)");
  Tensor host = to(Device::cpu()).to(dtype_of<T>::value).contiguous();
  std::vector<T> out(numel());
  if constexpr (std::is_same_v<T, bool>) {
    for (size_t i = 0; i < out.size(); ++i) out[i] = host.data<bool>()[i];
  } else if (!out.empty()) {
    std::memcpy(out.data(), host.data_ptr(), out.size() * sizeof(T));
  }
  return out;
}

#define MT_INSTANTIATE_VECTOR(e, ty, n)                                                              \
  template Tensor Tensor::from_vector<ty>(const std::vector<ty>&, const Shape&, DType, Device); \
  template std::vector<ty> Tensor::to_vector<ty>() const;
MT_FORALL_DTYPES(MT_INSTANTIATE_VECTOR)
#undef MT_INSTANTIATE_VECTOR

int64_t Tensor::size(int d) const { return shape()[wrap_dim(d, dim(), "size")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl()->storage->data()) + impl()->offset * static_cast<int64_t>(element_size());
}

double Tensor::item() const {
  MT_CHECK(numel() == 1, "item: expected a tensor with one element, got shape ", shape());
  return to_vector<double>()[0];
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::detach() const {
  return make_view(impl()->storage, shape(), strides(), offset(), dtype());
}

const Tensor& Tensor::set_requires_grad(bool on) const {
  MT_CHECK(!on || is_floating(dtype()), "set_requires_grad: only floating tensors can require grad, got ", dtype());
  MT_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can change requires_grad");
  autograd_meta().requires_grad = on;
  return *this;
}

AutogradMeta& Tensor::autograd_meta() const {
  if (!impl()->autograd) impl()->autograd = std::make_unique<AutogradMeta>();
  return *impl()->autograd;
}

Tensor Tensor::grad() const {
  if (!impl()->autograd || !impl()->autograd->grad) return Tensor();
  return *impl()->autograd->grad;
}

void Tensor::set_grad(const Tensor& g) const {
  if (!g.defined()) {
    autograd_meta().grad.reset();
    return;
  }
  MT_CHECK(g.shape() == shape(), "set_grad: shapes differ: ", shape(), " and ", g.shape());
  autograd_meta().grad = std::make_shared<Tensor>(g);
}

void Tensor::zero_grad() const {
  if (impl()->autograd) impl()->autograd->grad.reset();
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined tensor";
  std::ostringstream os;
  os << dtype_name(dtype()) << shape() << " on " << device();
  return os.str();
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) {
  os << t.describe();
  if (t.defined() && t.numel() <= 16) {
    std::vector<double> v = t.to_vector<double>();
    os << " {";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "}";
  }
  return os;
}

}  // namespace mt
