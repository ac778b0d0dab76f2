// Training checkpoints on top of CheckpointWriter/Reader: state dicts flattened under prefixes, the
// expert-parallel shards gathered whole on save and cut back to each rank's chunk on load.
#include "mt/train/train_checkpoint.h"

#include "mt/autograd/grad_mode.h"
#include "mt/io/checkpoint.h"
#include "mt/optim/lr_schedule.h"
#include "mt/optim/optimizer.h"

namespace mt {

namespace {

// The group a state-dict entry is sharded over, if any: model entries are named by their parameter,
// optimizer entries "state.<param>.<slot>".
const Communicator* shard_group(const ExpertShards& shards, const std::string& key, bool optim) {
  if (shards.empty()) return nullptr;
  std::string param = key;
  if (optim) {
    if (key.rfind("state.", 0) != 0 || key.rfind('.') <= 6) return nullptr;
    param = key.substr(6, key.rfind('.') - 6);
  }
  auto it = shards.find(param);
  return it == shards.end() ? nullptr : &it->second;
}

// Host copies of `state`, the sharded entries gathered whole (a collective over their groups). A rank
// that does not write (keep false) only takes part in the gathers and keeps nothing.
StateDict gather_state(const StateDict& state, const ExpertShards& shards, bool optim, bool keep = true) {
  StateDict out;
  for (const auto& [name, t] : state) {
    const Communicator* g = shard_group(shards, name, optim);
    if (!keep && !g) continue;
    Tensor v = t.detach().contiguous();
    if (g) {
      Shape full = v.shape();
      full[0] *= g->size();
      Tensor whole = Tensor::empty(full, v.dtype(), v.device());
      g->all_gather(v, whole);
      v = whole;
    }
    if (keep) out[name] = v.to(Device::cpu()).contiguous();
  }
  return out;
}

void write_state(CheckpointWriter& w, const std::string& prefix, const StateDict& host) {
  for (const auto& [name, t] : host)
    w.write(prefix + name, t.dtype(), std::vector<int64_t>(t.shape().begin(), t.shape().end()),
            t.numel() ? t.data_ptr() : nullptr);
}

// Reads every entry of `live` (shape/dtype from the live tensor; a sharded entry whole, then this rank's
// chunk) into host tensors first.
StateDict read_state(const CheckpointReader& r, const std::string& prefix, const StateDict& live,
                     const ExpertShards& shards, bool optim) {
  StateDict out;
  for (const auto& [name, t] : live) {
    std::string key = prefix + name;
    MT_CHECK(r.has(key), r.path().string(), ": checkpoint has no tensor '", key, "'");
    const Communicator* g = shard_group(shards, name, optim);
    Shape shape = t.shape();
    if (g) shape[0] *= g->size();
    Tensor host = Tensor::empty(shape, t.dtype(), Device::cpu());
    r.read(key, t.dtype(), std::vector<int64_t>(shape.begin(), shape.end()), host.numel() ? host.data_ptr() : nullptr);
    out[name] = g ? host.narrow(0, t.size(0) * g->rank(), t.size(0)).contiguous() : host;
  }
  return out;
}

void copy_into(const StateDict& live, const StateDict& loaded) {
  NoGradGuard ng;
  for (const auto& [name, t] : live) t.copy_(loaded.at(name));
}

}  // namespace

void save_train_checkpoint(const std::filesystem::path& path, const Module& model, const StateDict* optimizer_state,
                           const LrSchedule* schedule, const TrainCounters& c, const std::string& recipe_yaml,
                           const ExpertShards& shards, bool write) {
  StateDict model_state = gather_state(model.state_dict(), shards, false, write);
  StateDict optim_state = optimizer_state ? gather_state(*optimizer_state, shards, true, write) : StateDict{};
  if (!write) return;
  CheckpointWriter w(path);
  write_state(w, "model.", model_state);
  if (optimizer_state) write_state(w, "optim.", optim_state);
  if (schedule) write_state(w, "schedule.", gather_state(schedule->state_dict(), {}, false));
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
                                    LrSchedule* schedule, const ExpertShards& shards) {
  CheckpointReader r(path);
  StateDict model_live = model.state_dict();
  StateDict model_state = read_state(r, "model.", model_live, shards, false);
  StateDict optim_state, schedule_state;
  if (optimizer) optim_state = read_state(r, "optim.", optimizer->state_dict(), shards, true);
  if (schedule) schedule_state = read_state(r, "schedule.", schedule->state_dict(), {}, false);
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
