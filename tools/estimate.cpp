// moetrain estimate RECIPE: parameters (total and active per token), training FLOPs per token and
// memory per rank, from the recipe alone (nothing is allocated, so paper-scale models are fine).
#include <cstdio>

#include "commands.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"

namespace mt::cli {

void add_estimate_command(CLI::App& app) {
  struct Args {
    std::string recipe;
    std::vector<std::string> overrides;
    int ranks = 1;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("estimate", "Parameters, FLOPs per token and memory per rank of a recipe");
  c->add_option("recipe", a->recipe, "Recipe YAML file")->required();
  c->add_option("overrides", a->overrides, "Overrides as section.key=value");
  c->add_option("--ranks", a->ranks, "Data-parallel ranks (memory is per rank)")->check(CLI::PositiveNumber);
  c->callback([a] {
    Recipe r = load_recipe(a->recipe, a->overrides);
    GPTConfig cfg = gpt_config_from_recipe(r);
    ParamCounts pc = count_parameters(cfg);
    double flops = train_flops_per_token(cfg);
    bool half = r.model.dtype != ModelSection::DType::kF32;
    // Weights (+ grads) in the compute dtype; AdamW: f32 master (half only) + two f32 moments.
    double bytes_per_param = half ? 2 + 2 + 4 + 8 : 4 + 4 + 8;
    double state_gib = pc.total * bytes_per_param / (1024.0 * 1024 * 1024);
    std::printf("recipe:              %s\n", a->recipe.c_str());
    std::printf("parameters (total):  %.3fB (%ld)\n", pc.total / 1e9, static_cast<long>(pc.total));
    std::printf("parameters (active): %.3fB per token\n", pc.active / 1e9);
    std::printf("embedding params:    %.1fM\n", pc.embedding / 1e6);
    std::printf("train FLOPs/token:   %.3g (6*N_active_non_embedding + 6*V*d + 12*L*d*T)\n", flops);
    std::printf("weights+grads+optimizer per rank: %.2f GiB (%s weights, f32 AdamW state, no sharding)\n", state_gib,
                half ? "bf16" : "f32");
  });
}

}  // namespace mt::cli
