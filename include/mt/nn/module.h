// Module: the base of every layer. Parameters, buffers and submodules are registered by name;
// their dotted paths (`blocks.3.attn.qkv.weight`) are stable, in registration order, and serve as
// checkpoint dataset names and override keys. ModuleList holds numbered children (`blocks.3`).
#pragma once
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "mt/core/generator.h"
#include "mt/core/state_dict.h"
#include "mt/core/tensor.h"

namespace mt {

// What a parameter is for; the optimizer's weight-decay groups are chosen from it.
enum class ParamKind : uint8_t { kWeight, kBias, kNorm, kEmbedding };
enum class Strict : uint8_t { kNo, kYes };

struct NamedParameter {
  std::string name;  // dotted path from the module it was asked of
  Tensor tensor;
  ParamKind kind = ParamKind::kWeight;
};

class Module {
 public:
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Registers a leaf that requires grad (floating dtypes only); returns the stored tensor.
  const Tensor& register_parameter(const std::string& name, const Tensor& t, ParamKind kind = ParamKind::kWeight);
  // A tensor saved in state_dict and moved by to(), but not trained.
  const Tensor& register_buffer(const std::string& name, const Tensor& t);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    add_child(name, module);
    return module;
  }

  // Parameters of this module and its descendants, pre-order, in registration order. A tensor
  // registered twice (weight tying) appears once, under its first name.
  std::vector<NamedParameter> named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // This module ("") and every descendant, pre-order, with dotted paths.
  std::vector<std::pair<std::string, Module*>> named_modules();
  // Parameters and buffers by dotted name (tied tensors under each of their names).
  StateDict state_dict() const;
  // Copies values in. Shapes and dtypes must match exactly; with Strict::kYes a missing or
  // unexpected key is an error too. Errors name the key (and both shapes / dtypes).
  void load_state_dict(const StateDict& state, Strict strict = Strict::kYes);

  void train(bool on = true);  // recursive
  void eval() { train(false); }
  bool is_training() const { return training_; }
  // Moves every parameter and buffer; floating ones are converted to `dtype`. Parameters keep
  // their identity (the same Tensor objects), stay leaves that require grad, and lose their grads.
  void to(Device device, DType dtype);
  void to(Device device);
  void to(DType dtype);
  void zero_grad();  // drops every parameter's gradient

  // Re-initialises this module's own parameters (not its children's); see mt/nn/init.h.
  virtual void reset_parameters(double std, Generator& gen);

 protected:
  Module() = default;

 private:
  struct Param {
    std::string name;
    Tensor tensor;
    ParamKind kind;
  };
  void check_new_name(const std::string& name) const;
  void add_child(const std::string& name, std::shared_ptr<Module> module);
  void collect_parameters(const std::string& prefix, std::vector<NamedParameter>& out) const;
  void collect_state(const std::string& prefix, StateDict& out) const;
  void convert(const Device* device, const DType* dtype);

  std::vector<Param> params_;
  std::vector<std::pair<std::string, Tensor>> buffers_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

// Numbered children: `blocks.0`, `blocks.1`, ...
class ModuleList : public Module {
 public:
  template <typename M>
  std::shared_ptr<M> push_back(std::shared_ptr<M> module) {
    items_.push_back(module);
    return register_module(std::to_string(items_.size() - 1), std::move(module));
  }
  size_t size() const { return items_.size(); }
  // The i-th child as an M (an error if it is not one).
  template <typename M = Module>
  M& at(size_t i) const {
    MT_CHECK(i < items_.size(), "ModuleList: index ", i, " out of range for ", items_.size(), " modules");
    M* m = dynamic_cast<M*>(items_[i].get());
    MT_CHECK(m != nullptr, "ModuleList: module ", i, " is not of the requested type");
    return *m;
  }

 private:
  std::vector<std::shared_ptr<Module>> items_;
};

}  // namespace mt
