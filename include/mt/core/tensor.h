// Tensor: a strided view (shape, strides, offset in elements, dtype) over a Storage, plus
// optional autograd metadata. Copying a Tensor shares everything; clone() is the only deep copy.
// Methods that call ops or the engine are defined above core (Note [Layer order] in
// tests/cli/layer_order_test.sh): the views in src/ops/view_ops.cpp, to/clone/copy_ in
// src/ops/tensor_methods.cpp, backward in src/autograd/tensor_backward.cpp.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "mt/core/dtype.h"
#include "mt/core/shape.h"
#include "mt/core/storage.h"

namespace mt {

class Node;
class Tensor;

struct AutogradMeta {
  bool requires_grad = false;
  std::shared_ptr<Node> grad_fn;           // null for leaves
  uint32_t output_nr = 0;                  // which output of grad_fn this tensor is
  std::shared_ptr<Tensor> grad;            // accumulated gradient (leaves, or retained)
  std::weak_ptr<Node> grad_accumulator;    // leaves: the AccumulateGrad node, created lazily
  std::function<void()> grad_ready_hook;   // leaves: called after each backward adds into grad
};

struct TensorImpl {
  Storage storage;
  Shape shape;
  Shape strides;
  int64_t offset = 0;
  DType dtype = DType::kF32;
  std::unique_ptr<AutogradMeta> autograd;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A fresh, uninitialised, contiguous tensor.
  static Tensor empty(const Shape& shape, DType dtype = DType::kF32, Device device = Device::cpu());
  // A view over existing storage.
  static Tensor make_view(Storage storage, const Shape& shape, const Shape& strides, int64_t offset, DType dtype);
  // Copies host values in (converted to `dtype`).
  template <typename T>
  static Tensor from_vector(const std::vector<T>& values, const Shape& shape, DType dtype = dtype_of<T>::value,
                            Device device = Device::cpu());

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl()->shape; }
  const Shape& strides() const { return impl()->strides; }
  int64_t offset() const { return impl()->offset; }
  int dim() const { return shape().dim(); }
  int64_t size(int d) const;  // negative d counts from the end
  int64_t numel() const { return shape().numel(); }
  DType dtype() const { return impl()->dtype; }
  Device device() const { return impl()->storage->device(); }
  size_t element_size() const { return dtype_size(dtype()); }
  size_t nbytes() const { return numel() * element_size(); }
  bool is_contiguous() const;
  const Storage& storage() const { return impl()->storage; }
  void* data_ptr() const;
  template <typename T>
  T* data() const {
    MT_CHECK(dtype_of<T>::value == dtype(), "data<", dtype_name(dtype_of<T>::value), ">() on a ", dtype_name(dtype()), " tensor");
    return static_cast<T*>(data_ptr());
  }
  TensorImpl* impl() const {
    MT_CHECK(impl_ != nullptr, "use of an undefined tensor");
    return impl_.get();
  }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& o) const { return impl_ == o.impl_; }

  // Views (differentiable; share storage).
  Tensor view(const Shape& shape) const;      // needs compatible strides; -1 infers one dim
  Tensor reshape(const Shape& shape) const;   // view if possible, else a contiguous copy
  Tensor transpose(int d0, int d1) const;
  Tensor permute(const std::vector<int>& dims) const;
  Tensor narrow(int dim, int64_t start, int64_t length) const;
  Tensor select(int dim, int64_t index) const;
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int dim) const;
  Tensor squeeze(int dim) const;
  Tensor flatten(int start_dim = 0, int end_dim = -1) const;
  Tensor contiguous() const;  // self if already contiguous

  // Copies.
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor to(Device device, DType dtype) const { return to(device).to(dtype); }
  Tensor clone() const;
  Tensor detach() const;  // shares storage, no autograd history
  void copy_(const Tensor& src) const;  // in-place copy with broadcasting/cast/cross-device; not differentiable

  // Host access (synchronises with the device).
  double item() const;
  template <typename T>
  std::vector<T> to_vector() const;

  // Autograd.
  bool requires_grad() const { return impl()->autograd && impl()->autograd->requires_grad; }
  const Tensor& set_requires_grad(bool on) const;
  bool is_leaf() const { return !impl()->autograd || !impl()->autograd->grad_fn; }
  Tensor grad() const;
  void set_grad(const Tensor& g) const;
  void zero_grad() const;  // drops the gradient
  std::shared_ptr<Node> grad_fn() const { return impl()->autograd ? impl()->autograd->grad_fn : nullptr; }
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  AutogradMeta& autograd_meta() const;

  uint32_t version() const { return impl()->storage->version(); }
  void bump_version() const { impl()->storage->bump_version(); }

  std::string describe() const;  // "f32[2, 3] on cpu"

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& os, const Tensor& t);  // describe() and, when small, values

}  // namespace mt
