// Pre-flight checks of a recipe against the machine and its files (see preflight.h). Each check
// reports the dotted key and where the recipe set it (Recipe::where), then what is wrong.
#include "mt/train/preflight.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "mt/core/device.h"
#include "mt/core/error.h"
#include "mt/data/file_glob.h"
#include "mt/data/token_shard.h"
#include "mt/data/tokenizer.h"
#include "mt/dist/process_groups.h"
#include "mt/io/checkpoint_dir.h"
#include "mt/nn/gpt.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/memory_estimate.h"

#ifdef MT_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace mt {
namespace fs = std::filesystem;

namespace {

constexpr double kGiB = 1024.0 * 1024 * 1024;

// Runs `check`, prefixing any mt::Error it throws with `where` and `key` (a check written for another
// caller, e.g. the data layer's, then names the recipe setting it was about). `set_key` finds the
// line where it was set when `key` is a part of a setting (data.train[1].path of data.train).
template <class F>
auto at_key(const Recipe& r, const std::string& key, F check, const char* set_key = nullptr) {
  try {
    return check();
  } catch (const Error& e) {
    throw Error(str_cat(r.where({set_key ? set_key : key.c_str()}), ": ", key, ": ", e.what()));
  }
}

bool will_use_cuda(const Recipe& r) {
  return r.train.device == TrainSection::Device::kCuda ||
         (r.train.device == TrainSection::Device::kAuto && cuda_available());
}

void check_device(const Recipe& r) {
#ifdef MT_WITH_CUDA
  const char* build = "";
#else
  const char* build = " (this moetrain was built without CUDA)";
#endif
  MT_CHECK(r.train.device != TrainSection::Device::kCuda || cuda_available(), r.where({"train.device"}),
           ": train.device: cuda, but no GPU is available", build, "; use train.device=cpu, or auto (cuda when there is one)");
}

void check_ranks(const Recipe& r, int world_size) {
  MT_CHECK(r.dist.dp == 0 || r.dist.dp == world_size, r.where({"dist.dp"}), ": dist.dp = ", r.dist.dp, " but the job has ",
           world_size, " rank(s); only pure data parallelism is supported, so dist.dp must be 0 or ", world_size);
  at_key(r, "dist.ep", [&] {
    check_expert_parallel(r.dist.ep, world_size);
    const GPTConfig cfg = gpt_config_from_recipe(r);
    for (size_t l = 0; l < cfg.experts_per_block.size(); ++l)
      if (cfg.experts_per_block[l] > 0)
        expert_parallel_size(static_cast<int>(l), cfg.experts_per_block[l], r.dist.ep, world_size);
  });
  if (r.dist.node_size > 0)
    at_key(r, "dist.node_size", [&] { check_node_size(r.dist.node_size, world_size, r.dist.ep); });
}

// The run folder (or, when it does not exist yet, its nearest existing parent) must be a writable folder.
void check_run_dir(const Recipe& r) {
  const std::string where = r.where({"train.run_dir"});
  const fs::path dir = r.train.run_dir;
  std::error_code ec;
  if (fs::exists(dir, ec)) {
    MT_CHECK(fs::is_directory(dir, ec), where, ": train.run_dir = '", r.train.run_dir,
             "' is not a folder; expected a folder (or a path to create) for recipe.yaml, metrics.jsonl and checkpoints/");
    MT_CHECK(::access(dir.c_str(), W_OK | X_OK) == 0, where, ": train.run_dir = '", r.train.run_dir,
             "' is not writable by this user");
    return;
  }
  fs::path parent = fs::absolute(dir, ec).parent_path();
  while (!parent.empty() && !fs::exists(parent, ec) && parent != parent.root_path()) parent = parent.parent_path();
  MT_CHECK(fs::is_directory(parent, ec), where, ": train.run_dir = '", r.train.run_dir, "' cannot be created: '",
           parent.string(), "' is not a folder");
  MT_CHECK(::access(parent.c_str(), W_OK | X_OK) == 0, where, ": train.run_dir = '", r.train.run_dir,
           "' cannot be created: '", parent.string(), "' is not writable by this user");
}

// The glob must match, every match must be a token shard with a good header, and together they
// must hold one step's windows (token_loader.h: W = (tokens - 1) / seq_len windows of seq_len + 1).
// `key` names the glob in errors (data.train[1].path for a mixture's source); `set_key` finds its line.
void check_shards(const Recipe& r, const char* set_key, const std::string& key, const std::string& pattern,
                  int world_size) {
  const std::vector<std::string> files = at_key(r, key, [&] { return expand_file_patterns({pattern}); }, set_key);
  int64_t tokens = 0;
  for (const std::string& path : files) tokens += at_key(r, key, [&] { return read_shard_header(path).tokens; }, set_key);
  const int64_t windows = (tokens - 1) / r.model.seq_len;
  const int64_t per_step = int64_t{r.train.micro_batch} * world_size;
  MT_CHECK(windows >= per_step, r.where({set_key}), ": ", key, ": ", files.size(), " shard(s) matching '", pattern,
           "' (", files.front(), files.size() > 1 ? ", ..." : "", ") hold ", tokens, " tokens = ", windows,
           " windows of model.seq_len + 1 = ", r.model.seq_len + 1, " tokens, but a step needs train.micro_batch x ranks = ",
           r.train.micro_batch, " x ", world_size, " = ", per_step);
}

void check_tokenizer(const Recipe& r) {
  if (r.data.tokenizer.empty()) return;
  const Tokenizer tok = at_key(r, "data.tokenizer", [&] { return Tokenizer::load(r.data.tokenizer); });
  if (r.train.sample_every == 0) return;
  MT_CHECK(tok.vocab_size() == r.model.vocab_size, r.where({"data.tokenizer", "model.vocab_size"}),
           ": data.tokenizer '", r.data.tokenizer, "' has ", tok.vocab_size(), " tokens but model.vocab_size = ",
           r.model.vocab_size, "; samples (train.sample_every) draw ids below model.vocab_size, so the two must be equal");
  MT_CHECK(!tok.encode(r.train.sample_prompt).empty(), r.where({"train.sample_prompt"}),
           ": train.sample_prompt '", r.train.sample_prompt, "' encodes to no tokens; samples need a prompt of at ",
           "least one token (the default is \"\\n\")");
}

// A named, existing checkpoint: a .h5 file, a checkpoints folder or a run folder with checkpoints.
void check_checkpoint_path(const Recipe& r, const char* key, const std::string& path) {
  at_key(r, key, [&] { resolve_checkpoint(path); });
}

// Note [Pre-flight memory estimate]: weights, gradients and optimizer state come from
// memory_per_rank (as `estimate` prints them); activations are what the backward certainly holds at its
// start: the tensors every block keeps and the head's logits with their gradient (activation_memory,
// Note [Activation memory], without the recomputed block). The CUDA context, library workspaces and the
// allocator's slack are left out, so the estimate errs low: a refusal is certain.
struct MemoryNeed {
  double weights = 0, optimizer = 0, activations = 0;
  double total() const { return weights + optimizer + activations; }
};

// Host RAM, or the address-space limit when lower (CPU runs), or the first GPU's memory (CUDA runs), in bytes; 0 when unknown.
double device_memory_bytes(bool cuda, std::string& what) {
#ifdef MT_WITH_CUDA
  if (cuda) {
    cudaDeviceProp prop{};
    what = "GPU memory";
    return cudaGetDeviceProperties(&prop, 0) == cudaSuccess ? static_cast<double>(prop.totalGlobalMem) : 0.0;
  }
#endif
  (void)cuda;
  what = "host memory (RAM)";
  const long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGE_SIZE);
  double bytes = pages > 0 && page > 0 ? static_cast<double>(pages) * page : 0.0;
  struct rlimit limit {};
  if (::getrlimit(RLIMIT_AS, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      (bytes == 0 || static_cast<double>(limit.rlim_cur) < bytes)) {
    what = "this process's address-space limit (ulimit -v)";
    bytes = static_cast<double>(limit.rlim_cur);
  }
  return bytes;
}

void check_memory(const Recipe& r, int world_size) {
  const bool cuda = will_use_cuda(r);
  const bool half = r.model.dtype == ModelSection::DType::kBf16 || (r.model.dtype == ModelSection::DType::kAuto && cuda);
  const GPTConfig config = gpt_config_from_recipe(r);
  const MemoryPerRank m = memory_per_rank(config, half, world_size, r.dist.ep, r.dist.zero);
  const ActivationMemory act = activation_memory(config, half, r.train.micro_batch);
  MemoryNeed need{m.weights_and_grads, m.optimizer_state, act.kept + act.head};
  std::string what;
  const double have = device_memory_bytes(cuda, what);
  if (have <= 0 || need.total() <= have) return;
  const bool activations_dominate = need.activations > need.weights + need.optimizer;
  const std::string where =
      activations_dominate ? r.where({"train.micro_batch", "model.seq_len", "model.vocab_size", "train.global_batch"})
                           : r.where({"model.d_model", "model.layers", "moe.experts", "model.vocab_size"});
  const std::string keys = activations_dominate
                               ? str_cat("train.micro_batch = ", r.train.micro_batch, ", model.seq_len = ",
                                         r.model.seq_len, ", model.vocab_size = ", r.model.vocab_size)
                               : str_cat("model.d_model = ", r.model.d_model, ", model.layers = ", r.model.layers,
                                         r.moe.dense() ? "" : ", moe.experts", ", model.vocab_size = ", r.model.vocab_size);
  MT_FAIL(where, ": the run needs at least ", need.total() / kGiB, " GiB per rank (", need.weights / kGiB,
          " GiB weights and gradients, ", need.optimizer / kGiB, " GiB optimizer state, ", need.activations / kGiB,
          " GiB activations, a lower bound), more than the ", have / kGiB, " GiB of ", what,
          "; most of it comes from ", keys, ": make them smaller", activations_dominate ? "" : ", or add ranks with dist.ep / dist.zero");
}

}  // namespace

void check_recipe_sizes(const Recipe& r) {
  // Parameter and activation counts in double: the int64 arithmetic of count_parameters and the
  // allocators must stay far from overflow.
  constexpr double kLimit = 1e18;  // elements; int64 holds 9.2e18
  const double d = r.model.d_model, padded_vocab = std::ceil(r.model.vocab_size / 64.0) * 64.0;
  const double embedding = (padded_vocab + r.model.seq_len) * d;
  double experts = 0;
  for (int i = 0; i < r.moe.moe_layer_count(r.model.layers); ++i) experts = std::max<double>(experts, r.moe.experts_at(i));
  const double blocks = r.model.layers * (12.0 + 8.0 * experts) * d * d;
  const double logits = static_cast<double>(r.train.micro_batch) * r.model.seq_len * padded_vocab;
  MT_CHECK(embedding < kLimit, r.where({"model.vocab_size", "model.d_model"}), ": model.vocab_size = ",
           r.model.vocab_size, " x model.d_model = ", r.model.d_model, " makes an embedding of ", embedding,
           " values, beyond what 64-bit sizes can count; make them smaller");
  MT_CHECK(blocks < kLimit, r.where({"model.d_model", "model.layers", "moe.experts"}), ": model.layers = ",
           r.model.layers, " blocks of model.d_model = ", r.model.d_model, r.moe.dense() ? "" : " with up to ",
           r.moe.dense() ? "" : str_cat(experts, " experts (moe.experts)"), " make ", blocks,
           " parameters, beyond what 64-bit sizes can count; make them smaller");
  MT_CHECK(logits < kLimit, r.where({"train.micro_batch", "model.seq_len", "model.vocab_size"}), ": train.micro_batch = ",
           r.train.micro_batch, " x model.seq_len = ", r.model.seq_len, " x model.vocab_size = ", r.model.vocab_size,
           " makes ", logits, " logits per micro-batch, beyond what 64-bit sizes can count; make them smaller");
}

void check_recipe_can_run(const Recipe& recipe, int world_size) {
  check_device(recipe);
  check_ranks(recipe, world_size);
  Recipe r = recipe;  // with the batch derived for the job's ranks, as train() will
  resolve_batch(r, world_size);
  check_recipe_sizes(r);
  check_memory(r, world_size);
  check_run_dir(r);
  const std::vector<DataSource>& train = r.data.train;
  for (size_t i = 0; i < train.size(); ++i)
    check_shards(r, "data.train", train.size() == 1 ? "data.train" : str_cat("data.train[", i, "].path"), train[i].path,
                 world_size);
  if (!r.data.val.empty()) check_shards(r, "data.val", "data.val", r.data.val, world_size);
  check_tokenizer(r);
  if (!r.distill.teacher.empty()) check_checkpoint_path(r, "distill.teacher", r.distill.teacher);
  if (r.checkpoint.resume != "auto" && r.checkpoint.resume != "never")
    check_checkpoint_path(r, "checkpoint.resume", r.checkpoint.resume);
}

}  // namespace mt
