// A model rebuilt from a checkpoint's stored recipe and weights, in eval mode: what `eval` and
// `generate` run and what a distillation student learns from (the teacher).
#pragma once
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "mt/core/generator.h"
#include "mt/dist/process_groups.h"
#include "mt/io/checkpoint_source.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"

namespace mt {

struct LoadedModel {
  std::filesystem::path checkpoint;
  Recipe recipe;
  Device device;
  std::unique_ptr<Generator> init_gen, dropout_gen;
  std::unique_ptr<ProcessGroups> groups;  // the groups its experts are split over, if any
  std::unique_ptr<GPT> model;
  int64_t step = 0;
};

// path: a run folder, its checkpoints folder or a .h5 file. device: "auto", "cpu", "cuda[:N]".
// overrides: `section.key=value` applied to the checkpoint's recipe before the model is built (say
// moe.drop_tokens=false to evaluate without dropping tokens); one that changes a weight's shape is
// refused when the weights are loaded.
// With `world` and ep > 1, every MoE layer's experts are split over min(E, ep) ranks of `world` as in
// training (mt/dist/process_groups.h; node_size: dist.node_size): each rank loads its share, and every
// rank of the job must run each forward together (the all-to-alls).
LoadedModel load_model(const std::string& path, const std::string& device,
                       const std::vector<std::string>& overrides = {}, const Communicator* world = nullptr,
                       int ep = 1, int node_size = 0);

// What does not fit between a checkpoint's model tensors and the model its stored recipe describes:
// one line per tensor missing, extra or of another shape ("model.x: shape [2, 3] in the file, [3, 2]
// in the recipe's model"); empty when all fit. Builds the model on the CPU, so a model above
// `max_bytes` of f32 weights is not built: one line says so instead.
std::vector<std::string> checkpoint_recipe_mismatches(const CheckpointSource& checkpoint, double max_bytes = 4.0 * (1 << 30));

}  // namespace mt
