// Rebuilds a GPT from a checkpoint: its recipe, then the weights (verified before use).
#include "mt/train/checkpoint_model.h"

#include "mt/io/checkpoint_dir.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/train_checkpoint.h"
#include "mt/train/training_run.h"

namespace mt {

LoadedModel load_model(const std::string& path, const std::string& device, const std::vector<std::string>& overrides) {
  LoadedModel m;
  m.checkpoint = resolve_checkpoint(path);
  m.recipe = load_recipe_string(checkpoint_recipe(m.checkpoint), m.checkpoint.string() + ":recipe", overrides);
  m.device = device == "auto" ? (cuda_available() ? Device::cuda(0) : Device::cpu()) : Device::parse(device);
  GPTConfig cfg = gpt_config_from_recipe(m.recipe);
  m.init_gen = std::make_unique<Generator>(0);
  m.dropout_gen = std::make_unique<Generator>(0);
  m.model = std::make_unique<GPT>(cfg, *m.init_gen, *m.dropout_gen);
  m.model->to(m.device, resolve_dtype(m.recipe, m.device));
  m.step = load_train_checkpoint(m.checkpoint, *m.model, nullptr, nullptr).step;
  m.model->eval();
  return m;
}

}  // namespace mt
