// Training checkpoints: the model, optimizer (moments, f32 masters, step), LR schedule, counters,
// RNG and loader positions and the resolved recipe, in one HDF5 file (io/checkpoint.h) or a sharded
// folder (io/sharded_checkpoint.h), plus the inverse. Tensor names: "model.<param>", "optim.<key>", "schedule.<key>".
#pragma once
#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "mt/core/generator.h"
#include "mt/data/mixture_loader.h"
#include "mt/dist/communicator.h"
#include "mt/core/error.h"
#include "mt/nn/module.h"

namespace mt {

class Optimizer;
class LrSchedule;

struct TrainCounters {
  int64_t step = 0;    // optimizer steps done
  int64_t tokens = 0;  // training tokens seen (all ranks)
  std::vector<SourcePosition> loader;  // one per data.train source (mixture_loader.h)
  // Every rank's dropout / router-noise stream, by rank (see Note [One random stream per rank]).
  std::vector<GeneratorState> rank_rngs;
  int world_size = 1;
};

// Note [One random stream per rank]
// Each rank draws dropout and router noise (jitter, rsample, random token selection) from its own
// stream, seeded train.seed + 1 + rank. A checkpoint keeps every rank's stream ("dropout_rng": seed
// and offset per rank, rank-major); a resume on the same rank count gives each rank its own back,
// so a multi-rank run resumes bit-exactly. On another rank count, rank r takes saved stream r when
// there is one, else a fresh stream (seed + 1 + r) at saved rank 0's offset (every rank draws the
// same amount per step). A one-rank checkpoint of the older format (one pair) is rank 0's stream.
GeneratorState rank_stream_on_resume(const std::vector<GeneratorState>& saved, int rank, uint64_t train_seed);

// A tensor holding NaN or infinity, found while saving or loading a checkpoint.
class NonFiniteError : public Error {
 public:
  using Error::Error;
};

// Parameters split along dim 0 over an expert-parallel group (rank r holds chunk r), by parameter name.
// Checkpoints hold them whole, in global expert order, with their optimizer state: a checkpoint loads
// under any expert-parallel size or rank count.
using ExpertShards = std::map<std::string, Communicator>;

// optimizer_state: Optimizer::state_dict() (or, under ZeRO, the whole state assembled from the
// owners); null for none. A tensor holding NaN or infinity is refused (NonFiniteError) before the
// file is created. With shards, a collective: every rank calls it (the shards and their
// optimizer state are gathered) and only a rank with `write` writes the file.
void save_train_checkpoint(const std::filesystem::path& path, const Module& model, const StateDict* optimizer_state,
                           const LrSchedule* schedule, const TrainCounters& counters, const std::string& recipe_yaml,
                           const ExpertShards& shards = {}, bool write = true);

// The same as a sharded checkpoint folder (Note [Sharded checkpoints]): a collective over `world` in which
// every rank writes the pieces it holds (the model, `optimizer_state`: its own optimizer's state dict,
// which under ZeRO holds only its share, the schedule); `shards` say which entries are split.
void save_sharded_train_checkpoint(const std::filesystem::path& folder, const Communicator& world, const Module& model,
                                   const StateDict* optimizer_state, const LrSchedule* schedule,
                                   const TrainCounters& counters, const std::string& recipe_yaml,
                                   const ExpertShards& shards = {});

// Loads what the file or sharded folder holds into the live objects (optimizer/schedule may be null: model only), each
// rank its own chunk of the sharded parameters. Every tensor is checked by name, shape, dtype and
// finiteness, and the file must hold no model tensor the live model lacks (a smaller model would
// silently drop weights), before anything is copied; counters are checked for meaning.
TrainCounters load_train_checkpoint(const std::filesystem::path& path, Module& model, Optimizer* optimizer,
                                    LrSchedule* schedule, const ExpertShards& shards = {});

// The resolved recipe text stored in a checkpoint (a file or a sharded folder).
std::string checkpoint_recipe(const std::filesystem::path& path);

}  // namespace mt
