// Training checkpoints on top of CheckpointWriter/Reader: state dicts flattened under prefixes.
#include "mt/train/train_checkpoint.h"

#include "mt/autograd/grad_mode.h"
#include "mt/io/checkpoint.h"
#include "mt/optim/lr_schedule.h"
#include "mt/optim/optimizer.h"

namespace mt {

namespace {

void write_state(CheckpointWriter& w, const std::string& prefix, const StateDict& state) {
  for (const auto& [name, t] : state) {
    Tensor host = t.detach().to(Device::cpu()).contiguous();
    w.write(prefix + name, host.dtype(), std::vector<int64_t>(host.shape().begin(), host.shape().end()),
            host.numel() ? host.data_ptr() : nullptr);
  }
}

// Reads every entry of `live` (shape/dtype from the live tensor) into host tensors first.
StateDict read_state(const CheckpointReader& r, const std::string& prefix, const StateDict& live) {
  StateDict out;
  for (const auto& [name, t] : live) {
    std::string key = prefix + name;
    MT_CHECK(r.has(key), r.path().string(), ": checkpoint has no tensor '", key, "'");
    Tensor host = Tensor::empty(t.shape(), t.dtype(), Device::cpu());
    r.read(key, t.dtype(), std::vector<int64_t>(t.shape().begin(), t.shape().end()), host.numel() ? host.data_ptr() : nullptr);
    out[name] = host;
  }
  return out;
}

void copy_into(const StateDict& live, const StateDict& loaded) {
  NoGradGuard ng;
  for (const auto& [name, t] : live) t.copy_(loaded.at(name));
}

}  // namespace

void save_train_checkpoint(const std::filesystem::path& path, const Module& model, const Optimizer* optimizer,
                           const LrSchedule* schedule, const TrainCounters& c, const std::string& recipe_yaml) {
  CheckpointWriter w(path);
  write_state(w, "model.", model.state_dict());
  if (optimizer) write_state(w, "optim.", optimizer->state_dict());
  if (schedule) write_state(w, "schedule.", schedule->state_dict());
  w.write_int("step", c.step);
  w.write_int("tokens", c.tokens);
  w.write_int("loader_epoch", c.loader.epoch);
  w.write_int("loader_index", c.loader.index);
  w.write_u64s("dropout_rng", {c.dropout_rng.seed, c.dropout_rng.offset});
  w.write_int("world_size", c.world_size);
  w.write_string("recipe", recipe_yaml);
  w.commit();
}

TrainCounters load_train_checkpoint(const std::filesystem::path& path, Module& model, Optimizer* optimizer,
                                    LrSchedule* schedule) {
  CheckpointReader r(path);
  StateDict model_live = model.state_dict();
  StateDict model_state = read_state(r, "model.", model_live);
  StateDict optim_state, schedule_state;
  if (optimizer) optim_state = read_state(r, "optim.", optimizer->state_dict());
  if (schedule) schedule_state = read_state(r, "schedule.", schedule->state_dict());
  TrainCounters c;
  c.step = r.read_int("step");
  c.tokens = r.read_int("tokens");
  c.loader.epoch = r.read_int("loader_epoch");
  c.loader.index = r.read_int("loader_index");
  const std::vector<uint64_t>& rng = r.read_u64s("dropout_rng");
  MT_CHECK(rng.size() == 2, path.string(), ": dropout_rng holds ", rng.size(), " values, expected 2");
  c.dropout_rng = {rng[0], rng[1]};
  c.world_size = static_cast<int>(r.read_int("world_size"));
  // Everything was read and checked: only now touch the live objects.
  copy_into(model_live, model_state);
  if (optimizer) optimizer->load_state_dict(optim_state);
  if (schedule) schedule->load_state_dict(schedule_state);
  return c;
}

std::string checkpoint_recipe(const std::filesystem::path& path) {
  CheckpointReader r(path);
  return r.read_string("recipe");
}

}  // namespace mt
