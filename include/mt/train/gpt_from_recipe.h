// The model a recipe describes: its `model` and `moe` sections as a GPTConfig. Here in train/,
// the layer that knows both recipes (io/) and models (nn/); see Note [Layer order] in
// tests/cli/layer_order_test.sh.
#pragma once
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"

namespace mt {

GPTConfig gpt_config_from_recipe(const Recipe& recipe);

}  // namespace mt
