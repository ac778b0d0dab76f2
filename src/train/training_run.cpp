// TrainingRun: the recipe unpacked once into the objects a training loop needs (training_run.h).
#include "mt/train/training_run.h"

#include <cstdio>

#include "mt/io/checkpoint_dir.h"
#include "mt/train/distillation.h"
#include "mt/train/gpt_from_recipe.h"

namespace mt {

namespace fs = std::filesystem;

Device resolve_device(const Recipe& recipe, const Communicator& world) {
  switch (recipe.train.device) {
    case TrainSection::Device::kCpu: return Device::cpu();
    case TrainSection::Device::kCuda:
      MT_CHECK(cuda_available(), "train.device is cuda but no GPU is available");
      return Device::cuda(world.local_rank() % cuda_device_count());
    case TrainSection::Device::kAuto:
      return cuda_available() ? Device::cuda(world.local_rank() % cuda_device_count()) : Device::cpu();
  }
  return Device::cpu();
}

DType resolve_dtype(const Recipe& recipe, Device device) {
  switch (recipe.model.dtype) {
    case ModelSection::DType::kF32: return DType::kF32;
    case ModelSection::DType::kBf16: return DType::kBF16;
    case ModelSection::DType::kAuto: return device.is_cuda() ? DType::kBF16 : DType::kF32;
  }
  return DType::kF32;
}

namespace {

// dist.dp was checked against the ranks by the pre-flight (check_recipe_can_run).
Recipe with_batch_resolved(Recipe recipe, const Communicator& world) {
  resolve_batch(recipe, world.size());
  return recipe;
}

LrScheduleConfig schedule_config(const Recipe& recipe) {
  LrScheduleConfig config;
  config.lr = recipe.optim.lr;
  config.warmup_steps = recipe.schedule.warmup_steps;
  config.total_steps = recipe.train.steps;
  config.min_lr_ratio = recipe.schedule.min_lr_ratio;
  config.decay = recipe.schedule.kind == ScheduleSection::Kind::kConstant ? LrDecay::kConstant
                 : recipe.schedule.kind == ScheduleSection::Kind::kLinear ? LrDecay::kLinear
                                                                          : LrDecay::kCosine;
  return config;
}

// The checkpoint to resume from per checkpoint.resume, if any; a fallback is said on the lead.
std::optional<fs::path> resume_point(const Recipe& recipe, bool lead) {
  if (recipe.checkpoint.resume == "never") return std::nullopt;
  if (recipe.checkpoint.resume != "auto") return resolve_checkpoint(recipe.checkpoint.resume);
  std::optional<ResumePoint> found = find_resume_checkpoint(
      recipe.train.run_dir, recipe.checkpoint.fallback ? LatestFallback::kNewestValid : LatestFallback::kRefuse);
  if (!found) return std::nullopt;
  if (lead && !found->warning.empty()) std::fprintf(stderr, "moetrain: warning: %s\n", found->warning.c_str());
  return found->path;
}

}  // namespace

TokenLoaderOptions loader_options(const Recipe& recipe, const Communicator& world, const std::string& shards,
                                  LoaderOrder order) {
  TokenLoaderOptions options;
  options.shards = {shards};
  options.batch_size = recipe.train.micro_batch;
  options.seq_len = recipe.model.seq_len;
  options.dp_rank = world.rank();
  options.dp_size = world.size();
  options.seed = static_cast<uint64_t>(recipe.train.seed);
  options.vocab_size = recipe.model.vocab_size;
  options.order = order;
  return options;
}

TrainingRun::TrainingRun(Recipe unresolved, const Communicator& world)
    : recipe(with_batch_resolved(std::move(unresolved), world)),
      lead(world.rank() == 0),
      device(resolve_device(recipe, world)),
      dtype(resolve_dtype(recipe, device)),
      recipe_yaml(to_yaml(recipe)),
      run_dir(recipe.train.run_dir),
      config(gpt_config_from_recipe(recipe)),
      groups(world, recipe.dist.ep, config.experts_per_block, recipe.dist.node_size),
      init_gen(static_cast<uint64_t>(recipe.train.seed)),
      dropout_gen(static_cast<uint64_t>(recipe.train.seed) + 1 + static_cast<uint64_t>(world.rank())),
      schedule(schedule_config(recipe)) {
  if (lead) std::printf("%s", recipe_yaml.c_str());
  model = std::make_unique<GPT>(config, init_gen, dropout_gen, &groups);
  model->to(device, dtype);
  sharding = expert_sharding(*model, &groups);
  const ParamCounts param_counts = count_parameters(config);
  if (lead)
    std::printf("model: %.2fM parameters (%.2fM active per token, %.2fM trainable) on %s in %s\n",
                param_counts.total / 1e6, param_counts.active / 1e6, model->num_parameters() / 1e6,
                device.str().c_str(), dtype_name(dtype));
  if (lead && recipe.dist.ep > 1)
    std::printf("expert all-to-all: %s (nodes of %d ranks)\n",
                groups.hierarchical() ? "two-phase, within then across nodes" : "flat", groups.node_size());
  optimizer = std::make_unique<DistributedOptimizer>(recipe, *model, sharding, world);
  std::vector<MixtureSource> sources;
  for (const DataSource& d : recipe.data.train) sources.push_back({d.path, d.weight});
  loader = std::make_unique<MixtureLoader>(sources, loader_options(recipe, world, "", LoaderOrder::kShuffled));
  if (!recipe.data.tokenizer.empty() && recipe.train.sample_every > 0)
    tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(recipe.data.tokenizer));

  counters.world_size = world.size();
  if (std::optional<fs::path> from = resume_point(recipe, lead)) {
    counters = load_train_checkpoint(*from, *model, &optimizer->local(), &schedule, sharding.shards);
    MT_CHECK(counters.step <= recipe.train.steps, from->string(), ": metadata 'step' is ", counters.step,
             ", beyond train.steps = ", recipe.train.steps, " of the recipe");
    MT_CHECK(counters.loader.size() == loader->num_sources(), from->string(), ": the checkpoint holds the positions of ",
             counters.loader.size(), " data source(s), but data.train lists ", loader->num_sources());
    for (size_t i = 0; i < loader->num_sources(); ++i) {
      const int64_t windows = loader->source(i).num_windows();
      MT_CHECK(counters.loader[i].at.index <= windows, from->string(), ": metadata '",
               i == 0 ? "loader_index" : "loader_sources", "' puts source ", i, " at window ", counters.loader[i].at.index,
               ", beyond the ", windows, " sequences of an epoch of data.train", loader->num_sources() > 1 ? str_cat("[", i, "]") : "");
    }
    loader->set_state(counters.loader);
    dropout_gen.set_state(rank_stream_on_resume(counters.rank_rngs, world.rank(), static_cast<uint64_t>(recipe.train.seed)));
    counters.world_size = world.size();
    if (lead) {
      std::printf("resumed from %s at step %ld\n", from->string().c_str(), static_cast<long>(counters.step));
      std::fflush(stdout);  // seen even if the run is killed before the next line
    }
  }
  first_step = counters.step;

  // Staged KD: the teacher lives until the step KD stops (not loaded at all when resuming past it).
  kd_stop = distillation_stop_step(recipe);
  if (!recipe.distill.teacher.empty() && counters.step < kd_stop) {
    teacher = load_teacher(recipe, device, world);
    if (lead)
      std::printf("teacher: %s (step %ld), %.2fM parameters, %.2fM on this rank (experts split by dist.ep %d); KD until "
                  "step %ld\n",
                  teacher->checkpoint.string().c_str(), static_cast<long>(teacher->step),
                  count_parameters(gpt_config_from_recipe(teacher->recipe)).total / 1e6,
                  teacher->model->num_parameters() / 1e6, recipe.dist.ep, static_cast<long>(kd_stop));
  }
}

}  // namespace mt
