// Recipe: the typed form of a training recipe (YAML), one struct per section, and its strict loader.
// Loading follows `base:` chains, applies command-line `section.key=value` overrides last and checks
// every key, type, range and cross-field rule; to_yaml gives the fully resolved text back.
// The field table (names, types, valid ranges) lives in recipe_schema.h.
#pragma once
#include <initializer_list>
#include <map>
#include <string>
#include <vector>

#include "mt/nn/moe_config.h"
#include "mt/nn/recompute.h"

namespace mt {

struct ModelSection {
  enum class DType { kAuto, kF32, kBf16 };
  int layers = 12;
  int d_model = 768;
  int heads = 12;
  int seq_len = 1024;
  int vocab_size = 50257;  // the model pads it to a multiple of 64
  double dropout = 0.0;
  double init_std = 0.02;
  DType dtype = DType::kAuto;
  bool tie_embeddings = true;
  bool operator==(const ModelSection&) const = default;
};

// The fields after `every` are the MoE layers' own settings, mapped into MoEConfig by
// gpt_config_from_recipe (mt/train/gpt_from_recipe.h); the enums are MoEConfig's.
struct MoeSection {
  // `experts: N` sets experts = N (0 = dense model); `experts: [a, b, ...]` (Pyramid-MoE) sets
  // experts_per_layer, one count per MoE layer from shallow to deep, and leaves experts = 0.
  int experts = 0;
  std::vector<int> experts_per_layer;
  int every = 2;  // block l (1-indexed) is MoE iff l % every == 0
  int top_k = 1;
  MlpType mlp_type = MlpType::kStandard;
  double capacity_factor = 1.0;
  double eval_capacity_factor = 1.0;
  int min_capacity = 4;
  bool drop_tokens = true;
  NoisyGate noisy_gate = NoisyGate::kNone;
  bool random_token_selection = true;
  bool second_expert_sampling = true;
  double aux_loss_coef = 0.01;
  double z_loss_coef = 0.0;

  bool dense() const { return experts == 0 && experts_per_layer.empty(); }
  // Whether block `block` (1-indexed) of the model is an MoE block.
  bool is_moe_block(int block) const { return !dense() && block % every == 0; }
  // Number of MoE blocks in a model of `layers` blocks.
  int moe_layer_count(int layers) const { return dense() ? 0 : layers / every; }
  // Experts of the `moe_index`-th MoE block (0-based, shallow to deep).
  int experts_at(int moe_index) const;
  bool operator==(const MoeSection&) const = default;
};

// One source of training data: a glob of token shards and its share of the sequences (weights are
// relative; see Note [Mixture sampling] in data/mixture_loader.h).
struct DataSource {
  std::string path;
  double weight = 1.0;
  bool operator==(const DataSource&) const = default;
};

struct DataSection {
  // `train: glob` is one source of weight 1; `train: [{path: glob, weight: w}, ...]` a mixture.
  std::vector<DataSource> train;
  std::string val;        // glob of token shards; needed when train.eval_every > 0
  std::string tokenizer;  // path; empty = none
  bool operator==(const DataSection&) const = default;
};

struct OptimSection {
  enum class Name { kAdamW, kSgd };
  Name name = Name::kAdamW;
  double lr = 3e-4;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double weight_decay = 0.1;
  double momentum = 0.9;   // sgd only
  double grad_clip = 1.0;  // global-norm clip; 0 = off
  bool operator==(const OptimSection&) const = default;
};

struct ScheduleSection {
  enum class Kind { kConstant, kCosine, kLinear };
  Kind kind = Kind::kCosine;
  int warmup_steps = 0;
  double min_lr_ratio = 0.1;
  bool operator==(const ScheduleSection&) const = default;
};

struct TrainSection {
  enum class Device { kAuto, kCpu, kCuda };
  int steps = 0;  // required
  // Sequences: global_batch = micro_batch * grad_accum * dp_size. Give two (0 = derive);
  // resolve_batch derives the third once the data-parallel size is known.
  int micro_batch = 0;
  int grad_accum = 0;
  int global_batch = 0;
  int seed = 1234;
  Device device = Device::kAuto;
  std::string run_dir;  // required
  int eval_every = 0;   // 0 = no periodic eval
  int eval_steps = 20;
  int sample_every = 0;  // 0 = no samples
  int sample_tokens = 64;
  std::string sample_prompt = "\n";
  int max_bad_steps = 10;  // non-finite steps in a row (each skipped) that stop the run
  Recompute recompute = Recompute::kNone;
  // Note [The captured step]: after warm-up, the step is captured and replayed as one CUDA graph where it can be.
  bool cuda_graph = true;
  bool operator==(const TrainSection&) const = default;
};

struct CheckpointSection {
  // Note [Sharded checkpoints] (mt/io/sharded_checkpoint.h). single: the default, a file anyone can
  // copy, share or open with h5py, as every tool reads it; sharded: for models whose state does not
  // fit one host's memory or whose write by one process is too slow.
  enum class Format { kSingle, kSharded };
  int every = 0;  // steps between checkpoints; 0 = no periodic checkpoints
  int keep = 3;
  std::string resume = "auto";  // auto | never | <checkpoint path>
  bool fallback = true;  // Note [Resuming when latest is lost or damaged] (checkpoint_dir.h)
  Format format = Format::kSingle;
  bool operator==(const CheckpointSection&) const = default;
};

struct LogSection {
  enum class Progress { kAuto, kLine, kPlain };
  int every = 10;
  Progress progress = Progress::kAuto;
  bool operator==(const LogSection&) const = default;
};

struct DistSection {
  enum class GradReduceDType { kF32, kBf16 };
  int dp = 0;  // data-parallel size; 0 = all ranks
  int ep = 1;  // largest expert-parallel size: a MoE layer of E experts splits them over min(E, ep) ranks
  // Ranks per node, for the two-phase (hierarchical) expert all-to-all; 0 = ranks per host as MPI sees
  // them (Note [Hierarchical all-to-all] in mt/dist/expert_parallel.h).
  int node_size = 0;
  int zero = 0;  // ZeRO stage: 0 = every rank holds all optimizer state, 1 = partitioned over the ranks,
                 // 2 = the gradients too (reduce-scattered to their owners, Note [Sharded gradients])
  double timeout = 1800;  // seconds without progress (a stalled rank, a hung collective) that end the job; 0 = never
  // The dtype bf16 parameters' f32 gradients are summed in over data-parallel ranks: f32, or bf16 for
  // half the bytes (Note [f32 main gradients] in mt/graph/node.h). f32 parameters' stay f32.
  GradReduceDType grad_reduce_dtype = GradReduceDType::kF32;
  bool overlap = true;
  double bucket_mb = 25;  // MiB per data-parallel all-reduce bucket  // the data-parallel all-reduce starts during the backward (Note [Overlapped gradient reduction])
  bool operator==(const DistSection&) const = default;
};

struct DistillSection {
  std::string teacher;  // teacher checkpoint; empty = no distillation
  double kd_coef = 1.0;
  double temperature = 1.0;
  double stop_at = 0.0;  // KD stops here: a fraction of train.steps if <= 1, else a step; 0 = KD all run
  bool operator==(const DistillSection&) const = default;
};

struct Recipe {
  ModelSection model;
  MoeSection moe;
  DataSection data;
  OptimSection optim;
  ScheduleSection schedule;
  TrainSection train;
  CheckpointSection checkpoint;
  LogSection log;
  DistSection dist;
  DistillSection distill;
  // Where it came from: the files read, deepest base first, the named file last (or the name
  // given to load_recipe_string). Not part of the settings, so operator== ignores it.
  std::vector<std::string> sources;
  // Where each key was set: dotted key -> "file:line" or "command line"; keys left at their
  // default are absent. Not part of the settings either.
  std::map<std::string, std::string> set_at;

  // Where the first of `keys` that the recipe set was set; the recipe's file when none was.
  std::string where(std::initializer_list<const char*> keys) const;
};

// Equal settings (every section); `sources` is not compared.
bool operator==(const Recipe& a, const Recipe& b);

// Loads the recipe at `path` (following base: chains), applies `overrides` ("section.key=value",
// the value a YAML scalar or flow sequence) and checks it. Throws mt::Error naming file:line (or
// "command line") and the dotted key.
Recipe load_recipe(const std::string& path, const std::vector<std::string>& overrides = {});

// The same from YAML text; `name` stands for the file in messages. base: is refused here. Keys that
// were retired are ignored here (older checkpoints saved them), refused in files (Note [Retired recipe keys]).
Recipe load_recipe_string(const std::string& text, const std::string& name,
                          const std::vector<std::string>& overrides = {});

// Derives the missing one of train.global_batch / micro_batch / grad_accum for a data-parallel
// size of `dp_size`, or checks that the three agree; throws mt::Error when they cannot.
void resolve_batch(Recipe& recipe, int dp_size);

// Every field of every section, no base:; load_recipe_string(to_yaml(r)) == r.
std::string to_yaml(const Recipe& recipe);

}  // namespace mt
