// A training run built from its recipe: device and dtype, the model (experts split over dist.ep),
// the distributed optimizer, the schedule, the data loader, the sampling tokenizer, the counters
// resumed from a checkpoint, and the distillation teacher while KD lasts.
#pragma once
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "mt/core/generator.h"
#include "mt/data/mixture_loader.h"
#include "mt/data/tokenizer.h"
#include "mt/dist/process_groups.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/optim/lr_schedule.h"
#include "mt/train/checkpoint_model.h"
#include "mt/train/distributed_optimizer.h"
#include "mt/train/expert_sharding.h"
#include "mt/train/train_checkpoint.h"

namespace mt {

// Device and compute dtype for a recipe: auto -> cuda if available, bf16 on cuda, f32 on cpu.
Device resolve_device(const Recipe& recipe, const Communicator& world);
DType resolve_dtype(const Recipe& recipe, Device device);

// A loader of `shards` for this rank: train.micro_batch sequences of model.seq_len, sharded over the
// data-parallel ranks (train.seed orders a shuffled one).
TokenLoaderOptions loader_options(const Recipe& recipe, const Communicator& world, const std::string& shards,
                                  LoaderOrder order);

struct TrainingRun {
  // Builds everything, then resumes per checkpoint.resume (auto: Note [Resuming when latest is lost or
  // damaged]). The lead rank prints the recipe, the model and where it resumed from. A collective under expert parallelism.
  TrainingRun(Recipe recipe, const Communicator& world);
  TrainingRun(const TrainingRun&) = delete;
  TrainingRun& operator=(const TrainingRun&) = delete;

  Recipe recipe;  // the batch sizes resolved
  const bool lead;
  Device device;
  DType dtype;
  std::string recipe_yaml;
  std::filesystem::path run_dir;
  GPTConfig config;
  ProcessGroups groups;  // dist.ep's expert groups of the model's MoE layers
  Generator init_gen, dropout_gen;
  std::unique_ptr<GPT> model;
  ExpertSharding sharding;
  std::unique_ptr<DistributedOptimizer> optimizer;
  LrSchedule schedule;
  std::unique_ptr<MixtureLoader> loader;  // data.train
  std::unique_ptr<Tokenizer> tokenizer;  // null when not sampling
  TrainCounters counters;
  int64_t first_step = 0;  // the step this process started (resumed) at
  int64_t kd_stop = 0;     // the first step without KD
  std::optional<LoadedModel> teacher;
};

}  // namespace mt
