// Training checkpoints: the model, optimizer (moments, f32 masters, step), LR schedule, counters,
// RNG and loader positions and the resolved recipe, in one HDF5 file (io/checkpoint.h), plus the
// inverse. Tensor names: "model.<param>", "optim.<key>", "schedule.<key>".
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>

#include "mt/core/generator.h"
#include "mt/data/token_loader.h"
#include "mt/dist/communicator.h"
#include "mt/nn/module.h"

namespace mt {

class Optimizer;
class LrSchedule;

struct TrainCounters {
  int64_t step = 0;    // optimizer steps done
  int64_t tokens = 0;  // training tokens seen (all ranks)
  LoaderState loader;
  GeneratorState dropout_rng;
  int world_size = 1;
};

// Parameters split along dim 0 over an expert-parallel group (rank r holds chunk r), by parameter name.
// Checkpoints hold them whole, in global expert order, with their optimizer state: a checkpoint loads
// under any expert-parallel size or rank count.
using ExpertShards = std::map<std::string, Communicator>;

// optimizer_state: Optimizer::state_dict() (or, under ZeRO, the whole state assembled from the
// owners); null for none. With shards, a collective: every rank calls it (the shards and their
// optimizer state are gathered) and only a rank with `write` writes the file.
void save_train_checkpoint(const std::filesystem::path& path, const Module& model, const StateDict* optimizer_state,
                           const LrSchedule* schedule, const TrainCounters& counters, const std::string& recipe_yaml,
                           const ExpertShards& shards = {}, bool write = true);

// Loads what the file holds into the live objects (optimizer/schedule may be null: model only), each
// rank its own chunk of the sharded parameters. Every tensor is checked by name, shape and dtype
// before anything is copied.
TrainCounters load_train_checkpoint(const std::filesystem::path& path, Module& model, Optimizer* optimizer,
                                    LrSchedule* schedule, const ExpertShards& shards = {});

// The resolved recipe text stored in a checkpoint.
std::string checkpoint_recipe(const std::filesystem::path& path);

}  // namespace mt
