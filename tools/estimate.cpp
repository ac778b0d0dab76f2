// moetrain estimate RECIPE: parameters (total and active per token), training FLOPs per token and
// memory per rank under the recipe's dist.ep and dist.zero, from the recipe alone (nothing is
// allocated, so paper-scale models are fine).
#include <cstdio>

#include "cli_ranges.h"
#include "commands.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/memory_estimate.h"
#include "mt/train/preflight.h"

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
  c->add_option("--ranks", a->ranks, "Ranks of the job (memory is per rank)")->check(integer_in(1));
  c->callback([a] {
    Recipe r = load_recipe(a->recipe, a->overrides);
    check_recipe_sizes(r);
    GPTConfig cfg = gpt_config_from_recipe(r);
    ParamCounts pc = count_parameters(cfg);
    double flops = train_flops_per_token(cfg);
    bool half = r.model.dtype != ModelSection::DType::kF32;
    MemoryPerRank m = memory_per_rank(cfg, half, a->ranks, r.dist.ep, r.dist.zero);
    const double gib = 1024.0 * 1024 * 1024;
    std::printf("recipe:              %s\n", a->recipe.c_str());
    std::printf("parameters (total):  %.3fB (%ld)\n", pc.total / 1e9, static_cast<long>(pc.total));
    std::printf("parameters (active): %.3fB per token\n", pc.active / 1e9);
    std::printf("embedding params:    %.1fM\n", pc.embedding / 1e6);
    std::printf("train FLOPs/token:   %.3g (6*N_active_non_embedding + 6*V*d + 12*L*d*T)\n", flops);
    std::printf("memory per rank:     %.2f GiB = %.2f weights+grads (%s) + %.2f AdamW state (f32), on %d rank(s) "
                "with dist.ep %d, dist.zero %d; activations not counted\n",
                m.total() / gib, m.weights_and_grads / gib, half ? "bf16, f32 grads" : "f32", m.optimizer_state / gib, a->ranks,
                r.dist.ep, r.dist.zero);
  });
}

}  // namespace mt::cli
