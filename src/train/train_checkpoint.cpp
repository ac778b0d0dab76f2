// Training checkpoints on top of CheckpointWriter/Source: state dicts flattened under prefixes. One
// file: the expert-parallel shards gathered whole on save; sharded: each rank's own pieces written by
// it. On load each rank reads the rows of its chunk.
#include "mt/train/train_checkpoint.h"

#include <climits>
#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/io/checkpoint.h"
#include "mt/io/checkpoint_source.h"
#include "mt/io/sharded_checkpoint.h"
#include "mt/optim/lr_schedule.h"
#include "mt/optim/optimizer.h"

namespace mt {

namespace {

// How a state dict names its entries: model (and schedule) entries by their parameter, optimizer entries
// "state.<param>.<slot>".
enum class EntryNames : uint8_t { kParam, kOptimizerSlot };

// The group a state-dict entry is sharded over, if any.
const Communicator* shard_group(const ExpertShards& shards, const std::string& key, EntryNames names) {
  if (shards.empty()) return nullptr;
  std::string param = key;
  if (names == EntryNames::kOptimizerSlot) {
    if (key.rfind("state.", 0) != 0 || key.rfind('.') <= 6) return nullptr;
    param = key.substr(6, key.rfind('.') - 6);
  }
  auto it = shards.find(param);
  return it == shards.end() ? nullptr : &it->second;
}

// Host copies of `state`, the sharded entries gathered whole (a collective over their groups). A rank
// that does not write (keep false) only takes part in the gathers and keeps nothing.
StateDict gather_state(const StateDict& state, const ExpertShards& shards, EntryNames names, bool keep = true) {
  StateDict out;
  for (const auto& [name, t] : state) {
    const Communicator* g = shard_group(shards, name, names);
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

// Index of the first NaN or infinity in a host tensor of a floating dtype, or -1.
int64_t first_non_finite(const Tensor& host) {
  const int64_t n = host.numel();
  auto scan_bits = [&](uint16_t exponent_mask) {
    const auto* p = static_cast<const uint16_t*>(host.data_ptr());
    for (int64_t i = 0; i < n; ++i)
      if ((p[i] & exponent_mask) == exponent_mask) return i;
    return int64_t{-1};
  };
  auto scan = [&]<typename T>() {
    const auto* p = static_cast<const T*>(host.data_ptr());
    for (int64_t i = 0; i < n; ++i)
      if (!std::isfinite(p[i])) return i;
    return int64_t{-1};
  };
  switch (host.dtype()) {
    case DType::kF32: return scan.template operator()<float>();
    case DType::kF64: return scan.template operator()<double>();
    case DType::kBF16: return scan_bits(0x7F80);  // exponent all ones: inf or NaN
    case DType::kF16: return scan_bits(0x7C00);
    default: return -1;
  }
}

void check_finite(const StateDict& host, const std::string& prefix, const std::string& where) {
  for (const auto& [name, t] : host) {
    int64_t i = first_non_finite(t);
    if (i >= 0)
      throw NonFiniteError(str_cat(where, ": tensor '", prefix, name, "' holds a non-finite value (NaN or infinity) at flat index ", i,
                                   " of shape ", t.shape(), "; the run diverged"));
  }
}

void write_state(CheckpointWriter& w, const std::string& prefix, const StateDict& host) {
  for (const auto& [name, t] : host)
    w.write(prefix + name, t.dtype(), std::vector<int64_t>(t.shape().begin(), t.shape().end()),
            t.numel() ? t.data_ptr() : nullptr);
}

// The whole tensor's shape and the first row of this rank's chunk of a state-dict entry.
std::pair<std::vector<int64_t>, int64_t> whole_shape(const Tensor& t, const Communicator* g) {
  std::vector<int64_t> shape(t.shape().begin(), t.shape().end());
  if (!g) return {shape, 0};
  shape[0] *= g->size();
  return {shape, t.size(0) * g->rank()};
}

// Reads every entry of `live` (shape/dtype from the live tensor; of a sharded entry, this rank's chunk)
// into host tensors first.
StateDict read_state(const CheckpointSource& r, const std::string& prefix, const StateDict& live,
                     const ExpertShards& shards, EntryNames names) {
  StateDict out;
  for (const auto& [name, t] : live) {
    std::string key = prefix + name;
    MT_CHECK(r.has(key), r.path().string(), ": checkpoint has no tensor '", key, "'");
    const auto [shape, row0] = whole_shape(t, shard_group(shards, name, names));
    Tensor host = Tensor::empty(t.shape(), t.dtype(), Device::cpu());
    r.read_rows(key, t.dtype(), shape, row0, t.dim() == 0 ? 1 : t.size(0), host.numel() ? host.data_ptr() : nullptr);
    out[name] = host;
  }
  check_finite(out, prefix, r.path().string());
  return out;
}

// Model tensors in the file that the live model has no parameter or buffer for (a model built
// smaller or renamed): refused, since loading would silently drop those weights.
void check_no_extra_model_tensors(const CheckpointSource& r, const StateDict& live) {
  std::vector<std::string> extra;
  for (const std::string& key : r.names())
    if (key.rfind("model.", 0) == 0 && !live.count(key.substr(6))) extra.push_back(key);
  if (extra.empty()) return;
  std::string list;
  for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", " : "") + extra[i];
  if (extra.size() > 5) list += str_cat(", ... (", extra.size(), " in all)");
  MT_FAIL(r.path().string(), ": the checkpoint holds tensors this model does not have, which would be ignored: ", list,
          ". The model built from the recipe (with its overrides) is smaller or differently named than the "
          "checkpoint's; use the checkpoint's own model settings");
}

int64_t read_counter(const CheckpointSource& r, const char* key, int64_t lo, int64_t hi, const char* meaning) {
  int64_t v = r.meta().read_int(key);
  MT_CHECK(v >= lo && v <= hi, r.path().string(), ": metadata '", key, "' (", meaning, ") is ", v, ", expected ", lo,
           hi == INT64_MAX ? std::string(" or more") : str_cat("..", hi));
  return v;
}

// Note [Mixture positions in checkpoints]
// "loader_epoch" and "loader_index" are source 0's position (all a single-glob run has). A mixture
// also writes "loader_sources": epoch, window index and sequences drawn, per source in data.train
// order; its first entry must agree with the two counters.
std::vector<SourcePosition> read_mixture_positions(const CheckpointSource& r, const LoaderState& first) {
  const std::vector<uint64_t>& v = r.meta().read_u64s("loader_sources");
  MT_CHECK(v.size() >= 6 && v.size() % 3 == 0, r.path().string(), ": metadata 'loader_sources' holds ", v.size(),
           " values, expected 3 per data source (epoch, index, sequences) for 2 or more sources");
  std::vector<SourcePosition> sources;
  for (size_t i = 0; i < v.size(); i += 3) {
    MT_CHECK(v[i] <= INT64_MAX && v[i + 1] <= INT64_MAX && v[i + 2] <= INT64_MAX, r.path().string(),
             ": metadata 'loader_sources': source ", i / 3, " has a value beyond int64");
    sources.push_back({{static_cast<int64_t>(v[i]), static_cast<int64_t>(v[i + 1])}, static_cast<int64_t>(v[i + 2])});
  }
  MT_CHECK(sources[0].at == first, r.path().string(), ": metadata 'loader_sources' starts at epoch ",
           sources[0].at.epoch, ", index ", sources[0].at.index, " but 'loader_epoch' / 'loader_index' say ", first.epoch,
           ", ", first.index);
  return sources;
}

// The training metadata, the same in a file and in a sharded checkpoint's index.
void write_train_meta(CheckpointWriter& w, const std::filesystem::path& path, const TrainCounters& c,
                      const std::string& recipe_yaml) {
  MT_CHECK(c.rank_rngs.size() == static_cast<size_t>(c.world_size), path.string(), ": ", c.rank_rngs.size(),
           " random streams for ", c.world_size, " ranks");
  MT_CHECK(!c.loader.empty(), path.string(), ": no data loader position to save");
  std::vector<uint64_t> rngs;
  for (const GeneratorState& g : c.rank_rngs) rngs.insert(rngs.end(), {g.seed, g.offset});
  w.write_int("step", c.step);
  w.write_int("tokens", c.tokens);
  w.write_int("loader_epoch", c.loader[0].at.epoch);
  w.write_int("loader_index", c.loader[0].at.index);
  if (c.loader.size() > 1) {  // Note [Mixture positions in checkpoints]
    std::vector<uint64_t> sources;
    for (const SourcePosition& p : c.loader)
      sources.insert(sources.end(), {static_cast<uint64_t>(p.at.epoch), static_cast<uint64_t>(p.at.index),
                                     static_cast<uint64_t>(p.sequences)});
    w.write_u64s("loader_sources", sources);
  }
  w.write_u64s("dropout_rng", rngs);
  w.write_int("world_size", c.world_size);
  w.write_string("recipe", recipe_yaml);
}

void copy_into(const StateDict& live, const StateDict& loaded) {
  NoGradGuard ng;
  for (const auto& [name, t] : live) t.copy_(loaded.at(name));
}

}  // namespace

void save_train_checkpoint(const std::filesystem::path& path, const Module& model, const StateDict* optimizer_state,
                           const LrSchedule* schedule, const TrainCounters& c, const std::string& recipe_yaml,
                           const ExpertShards& shards, bool write) {
  StateDict model_state = gather_state(model.state_dict(), shards, EntryNames::kParam, write);
  StateDict optim_state = optimizer_state ? gather_state(*optimizer_state, shards, EntryNames::kOptimizerSlot, write) : StateDict{};
  if (!write) return;
  StateDict schedule_state = schedule ? gather_state(schedule->state_dict(), {}, EntryNames::kParam) : StateDict{};
  check_finite(model_state, "model.", path.string());
  check_finite(optim_state, "optim.", path.string());
  CheckpointWriter w(path);
  write_state(w, "model.", model_state);
  if (optimizer_state) write_state(w, "optim.", optim_state);
  if (schedule) write_state(w, "schedule.", schedule_state);
  write_train_meta(w, path, c, recipe_yaml);
  w.commit();
}

void save_sharded_train_checkpoint(const std::filesystem::path& folder, const Communicator& world, const Module& model,
                                   const StateDict* optimizer_state, const LrSchedule* schedule,
                                   const TrainCounters& c, const std::string& recipe_yaml, const ExpertShards& shards) {
  std::vector<ShardPiece> held;
  auto hold = [&](const std::string& prefix, const StateDict& state, const ExpertShards& groups, EntryNames names) {
    for (const auto& [name, t] : state) {
      auto [shape, row0] = whole_shape(t, shard_group(groups, name, names));
      held.push_back({prefix + name, t.detach(), std::move(shape), row0});
    }
  };
  hold("model.", model.state_dict(), shards, EntryNames::kParam);
  if (optimizer_state) hold("optim.", *optimizer_state, shards, EntryNames::kOptimizerSlot);
  if (schedule) hold("schedule.", schedule->state_dict(), {}, EntryNames::kParam);
  // Every rank checks what it holds, one host copy at a time; all learn of a non-finite tensor together.
  std::string bad;
  for (const ShardPiece& p : held) {
    if (!bad.empty()) break;
    try {
      check_finite({{p.name, p.data.to(Device::cpu()).contiguous()}}, "", folder.string());
    } catch (const NonFiniteError& e) {
      bad = e.what();
    }
  }
  if (world.all_reduce(bad.empty() ? 0.0 : 1.0, ReduceKind::kMax) > 0)
    throw NonFiniteError(!bad.empty() ? bad
                                      : folder.string() + ": another rank holds a non-finite value (its message "
                                                          "says which); the run diverged");
  write_sharded_checkpoint(folder, world, held,
                           [&](CheckpointWriter& w) { write_train_meta(w, folder, c, recipe_yaml); });
}

TrainCounters load_train_checkpoint(const std::filesystem::path& path, Module& model, Optimizer* optimizer,
                                    LrSchedule* schedule, const ExpertShards& shards) {
  const CheckpointSource r(path, Verify::kOnRead);  // each piece's crc32 is checked as it is read
  StateDict model_live = model.state_dict();
  check_no_extra_model_tensors(r, model_live);
  StateDict model_state = read_state(r, "model.", model_live, shards, EntryNames::kParam);
  StateDict optim_state, schedule_state;
  if (optimizer) optim_state = read_state(r, "optim.", optimizer->state_dict(), shards, EntryNames::kOptimizerSlot);
  if (schedule) schedule_state = read_state(r, "schedule.", schedule->state_dict(), {}, EntryNames::kParam);
  TrainCounters c;
  c.step = read_counter(r, "step", 0, INT64_MAX, "optimizer steps done");
  c.tokens = read_counter(r, "tokens", 0, INT64_MAX, "training tokens seen");
  c.loader = {SourcePosition{{read_counter(r, "loader_epoch", 0, INT64_MAX, "data epoch"),
                               read_counter(r, "loader_index", 0, INT64_MAX, "batches into the epoch")}}};
  if (r.meta().has_meta("loader_sources")) c.loader = read_mixture_positions(r, c.loader[0].at);
  c.world_size = static_cast<int>(read_counter(r, "world_size", 1, 1 << 24, "ranks of the saving job"));
  const std::vector<uint64_t>& rng = r.meta().read_u64s("dropout_rng");
  MT_CHECK(rng.size() == 2 || rng.size() == 2 * static_cast<size_t>(c.world_size), path.string(),
           ": metadata 'dropout_rng' holds ", rng.size(), " values, expected 2 per rank (", 2 * c.world_size, ")");
  for (size_t i = 0; i < rng.size(); i += 2) c.rank_rngs.push_back({rng[i], rng[i + 1]});
  if (schedule) {
    const int64_t schedule_step = static_cast<int64_t>(schedule_state.at("step").item());
    MT_CHECK(schedule_step == c.step, path.string(), ": tensor 'schedule.step' is ", schedule_step,
             " but metadata 'step' is ", c.step, ": the schedule state disagrees with the step");
  }
  // Everything was read and checked: only now touch the live objects.
  copy_into(model_live, model_state);
  if (optimizer) optimizer->load_state_dict(optim_state);
  if (schedule) schedule->load_state_dict(schedule_state);
  return c;
}

GeneratorState rank_stream_on_resume(const std::vector<GeneratorState>& saved, int rank, uint64_t train_seed) {
  MT_CHECK(!saved.empty(), "rank_stream_on_resume: no saved random streams");
  if (static_cast<size_t>(rank) < saved.size()) return saved[static_cast<size_t>(rank)];
  return {train_seed + 1 + static_cast<uint64_t>(rank), saved[0].offset};
}

std::string checkpoint_recipe(const std::filesystem::path& path) {
  if (is_sharded_checkpoint(path)) return CheckpointReader(path / kShardedIndexFile).read_string("recipe");
  return CheckpointReader(path).read_string("recipe");
}

}  // namespace mt
