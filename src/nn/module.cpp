// Module: registration, dotted-name traversal, state_dict load/save, mode and device/dtype moves.
#include "mt/nn/module.h"

#include <unordered_set>

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

std::string join(const std::string& prefix, const std::string& name) {
  return prefix.empty() ? name : prefix + "." + name;
}

// Points every holder of `t` at `data` (PyTorch's `param.data = ...`): the Tensor keeps its
// identity and autograd metadata, so modules' members and optimizers still see it.
void replace_data(const Tensor& t, const Tensor& data) {
  TensorImpl* impl = t.impl();
  impl->storage = data.storage();
  impl->shape = data.shape();
  impl->strides = data.strides();
  impl->offset = data.offset();
  impl->dtype = data.dtype();
  t.zero_grad();
}

}  // namespace

void Module::check_new_name(const std::string& name) const {
  MT_CHECK(!name.empty() && name.find('.') == std::string::npos,
           "Module: a name must be non-empty and contain no '.', got '", name, "'");
  for (const Param& p : params_) MT_CHECK(p.name != name, "Module: name '", name, "' is already a parameter");
  for (const auto& b : buffers_) MT_CHECK(b.first != name, "Module: name '", name, "' is already a buffer");
  for (const auto& c : children_) MT_CHECK(c.first != name, "Module: name '", name, "' is already a submodule");
}

const Tensor& Module::register_parameter(const std::string& name, const Tensor& t, ParamKind kind) {
  check_new_name(name);
  MT_CHECK(t.defined() && is_floating(t.dtype()), "register_parameter '", name,
           "': expected a floating tensor, got ", t.describe());
  MT_CHECK(t.is_leaf(), "register_parameter '", name, "': expected a leaf tensor (detach it first)");
  t.set_requires_grad(true);
  params_.push_back({name, t, kind});
  return params_.back().tensor;
}

const Tensor& Module::register_buffer(const std::string& name, const Tensor& t) {
  check_new_name(name);
  MT_CHECK(t.defined(), "register_buffer '", name, "': undefined tensor");
  buffers_.emplace_back(name, t);
  return buffers_.back().second;
}

void Module::add_child(const std::string& name, std::shared_ptr<Module> module) {
  check_new_name(name);
  MT_CHECK(module != nullptr, "register_module '", name, "': null module");
  module->train(training_);
  children_.emplace_back(name, std::move(module));
}

void Module::collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) const {
  for (const Param& p : params_) out.push_back({join(prefix, p.name), p.tensor, p.kind});
  for (const auto& [name, child] : children_) child->collect_parameters(join(prefix, name), out);
}

std::vector<NamedParameter> Module::named_parameters() const {
  std::vector<NamedParameter> all, unique;
  collect_parameters("", all);
  std::unordered_set<const TensorImpl*> seen;
  for (NamedParameter& p : all)
    if (seen.insert(p.tensor.impl()).second) unique.push_back(std::move(p));
  return unique;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (NamedParameter& p : named_parameters()) out.push_back(std::move(p.tensor));
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for (const NamedParameter& p : named_parameters()) n += p.tensor.numel();
  return n;
}

std::vector<std::pair<std::string, Module*>> Module::named_modules() {
  std::vector<std::pair<std::string, Module*>> out{{"", this}};
  for (const auto& [name, child] : children_)
    for (auto& [sub, m] : child->named_modules()) out.emplace_back(sub.empty() ? name : join(name, sub), m);
  return out;
}

void Module::collect_state(const std::string& prefix, StateDict& out) const {
  for (const Param& p : params_) out[join(prefix, p.name)] = p.tensor.detach();
  for (const auto& [name, t] : buffers_) out[join(prefix, name)] = t.detach();
  for (const auto& [name, child] : children_) child->collect_state(join(prefix, name), out);
}

StateDict Module::state_dict() const {
  StateDict out;
  collect_state("", out);
  return out;
}

void Module::load_state_dict(const StateDict& state, Strict strict) {
  StateDict own = state_dict();
  std::vector<std::string> missing, unexpected;
  for (const auto& [key, dst] : own) {
    auto it = state.find(key);
    if (it == state.end()) {
      missing.push_back(key);
      continue;
    }
    const Tensor& src = it->second;
    MT_CHECK(src.shape() == dst.shape(), "load_state_dict: '", key, "' has shape ", src.shape(),
             " in the state dict but ", dst.shape(), " in the module");
    MT_CHECK(src.dtype() == dst.dtype(), "load_state_dict: '", key, "' has dtype ", src.dtype(),
             " in the state dict but ", dst.dtype(), " in the module");
  }
  for (const auto& kv : state)
    if (!own.count(kv.first)) unexpected.push_back(kv.first);
  if (strict == Strict::kYes) {
    MT_CHECK(missing.empty(), "load_state_dict: missing key '", missing.empty() ? "" : missing[0], "' (",
             missing.size(), " missing in all)");
    MT_CHECK(unexpected.empty(), "load_state_dict: unexpected key '", unexpected.empty() ? "" : unexpected[0],
             "' (", unexpected.size(), " unexpected in all)");
  }
  NoGradGuard no_grad;
  for (const auto& [key, dst] : own) {
    auto it = state.find(key);
    if (it != state.end() && !it->second.is_same(dst)) dst.copy_(it->second);
  }
}

void Module::train(bool on) {
  training_ = on;
  for (auto& c : children_) c.second->train(on);
}

void Module::convert(const Device* device, const DType* dtype) {
  NoGradGuard no_grad;
  auto moved = [&](const Tensor& t) {
    Tensor out = t.detach();
    if (device) out = out.to(*device);
    if (dtype && is_floating(out.dtype())) out = out.to(*dtype);
    return out;
  };
  for (Param& p : params_) {
    Tensor data = moved(p.tensor);
    if (data.storage() != p.tensor.storage()) replace_data(p.tensor, data);
  }
  for (auto& b : buffers_) {
    Tensor data = moved(b.second);
    if (data.storage() != b.second.storage()) replace_data(b.second, data);
  }
  for (auto& c : children_) c.second->convert(device, dtype);
}

void Module::to(Device device, DType dtype) { convert(&device, &dtype); }
void Module::to(Device device) { convert(&device, nullptr); }
void Module::to(DType dtype) { convert(nullptr, &dtype); }

void Module::zero_grad() {
  for (const Tensor& p : parameters()) p.zero_grad();
}

void Module::reset_parameters(double, Generator&) {}

}  // namespace mt
