// Rebuilds a GPT from a checkpoint: its recipe, then the weights (verified before use).
#include "mt/train/checkpoint_model.h"

#include "mt/train/expert_sharding.h"

#include "mt/io/checkpoint_dir.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/train_checkpoint.h"
#include "mt/train/training_run.h"

namespace mt {

LoadedModel load_model(const std::string& path, const std::string& device, const std::vector<std::string>& overrides,
                       const Communicator* world, int ep, int node_size) {
  LoadedModel m;
  m.checkpoint = resolve_checkpoint(path);
  m.recipe = load_recipe_string(checkpoint_recipe(m.checkpoint), m.checkpoint.string() + ":recipe", overrides);
  m.device = device == "auto" ? (cuda_available() ? Device::cuda(0) : Device::cpu()) : Device::parse(device);
  GPTConfig cfg = gpt_config_from_recipe(m.recipe);
  m.init_gen = std::make_unique<Generator>(0);
  m.dropout_gen = std::make_unique<Generator>(0);
  if (world && ep > 1) m.groups = std::make_unique<ProcessGroups>(*world, ep, cfg.experts_per_block, node_size);
  m.model = std::make_unique<GPT>(cfg, *m.init_gen, *m.dropout_gen, m.groups.get());
  m.model->to(m.device, resolve_dtype(m.recipe, m.device));
  const ExpertShards shards = expert_sharding(*m.model, m.groups.get()).shards;
  m.step = load_train_checkpoint(m.checkpoint, *m.model, nullptr, nullptr, shards).step;
  m.model->eval();
  return m;
}

std::vector<std::string> checkpoint_recipe_mismatches(const CheckpointSource& r, double max_bytes) {
  const Recipe recipe = load_recipe_string(r.meta().read_string("recipe"), r.path().string() + ":recipe");
  const GPTConfig cfg = gpt_config_from_recipe(recipe);
  const double bytes = static_cast<double>(count_parameters(cfg).total) * 4;
  if (bytes > max_bytes)
    return {str_cat("not compared: the recipe's model needs ", bytes / (1 << 30), " GiB of f32 weights to build here")};
  Generator init(0), dropout(0);
  const GPT model(cfg, init, dropout);
  const StateDict live = model.state_dict();
  std::vector<std::string> out;
  for (const auto& [name, t] : live) {
    const std::string key = "model." + name;
    const std::vector<int64_t> want(t.shape().begin(), t.shape().end());
    if (!r.has(key)) {
      out.push_back(str_cat(key, ": missing from the file (the recipe's model has shape ", format_shape(want), ")"));
      continue;
    }
    const std::vector<int64_t>& stored = r.info(key).shape;
    if (stored != want)
      out.push_back(str_cat(key, ": shape ", format_shape(stored), " in the file, ", format_shape(want), " in the recipe's model"));
  }
  for (const std::string& key : r.names())
    if (key.rfind("model.", 0) == 0 && !live.count(key.substr(6)))
      out.push_back(str_cat(key, ": in the file, not in the recipe's model"));
  return out;
}

}  // namespace mt
