// A model rebuilt from a checkpoint's stored recipe and weights, in eval mode: what `eval` and
// `generate` run and what a distillation student learns from (the teacher).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mt/core/generator.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"

namespace mt {

struct LoadedModel {
  std::filesystem::path checkpoint;
  Recipe recipe;
  Device device;
  std::unique_ptr<Generator> init_gen, dropout_gen;
  std::unique_ptr<GPT> model;
  int64_t step = 0;
};

// path: a run folder, its checkpoints folder or a .h5 file. device: "auto", "cpu", "cuda[:N]".
// overrides: `section.key=value` applied to the checkpoint's recipe before the model is built (say
// moe.drop_tokens=false to evaluate without dropping tokens); one that changes a weight's shape is
// refused when the weights are loaded.
LoadedModel load_model(const std::string& path, const std::string& device,
                       const std::vector<std::string>& overrides = {});

}  // namespace mt
