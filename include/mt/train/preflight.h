// Pre-flight checks: what a recipe asks of the machine and of the files it names, checked before
// anything is built, so a run that cannot work ends at once with the dotted key (and file:line
// where the recipe set it) instead of after minutes of set-up, or as a bare std::bad_alloc.
// `validate` and train() call check_recipe_can_run; `estimate` calls check_recipe_sizes.
#pragma once
#include "mt/io/recipe.h"

namespace mt {

// Refuses sizes whose arithmetic would overflow int64 (parameter and activation counts), naming
// the keys that make them so large.
void check_recipe_sizes(const Recipe& recipe);

// Everything a recipe needs to run on this machine as a job of `world_size` ranks: the device
// (train.device: cuda needs a GPU), dist.dp, dist.ep and dist.node_size against the ranks, train.run_dir writable,
// the data.train / data.val globs matching readable shards, data.tokenizer loading (and
// train.sample_prompt encoding to tokens when sampling), distill.teacher and a checkpoint.resume
// path existing, and the memory estimate (weights, optimizer state, activations) fitting the
// host's RAM (CPU) or the GPU's memory. Throws mt::Error; the checks read files but change nothing.
void check_recipe_can_run(const Recipe& recipe, int world_size);

}  // namespace mt
