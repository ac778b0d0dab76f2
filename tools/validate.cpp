// `moetrain validate RECIPE [section.key=value ...]`: loads and checks a recipe as `train` would
// (pre-flight checks included: device, files, run folder, memory), derives the batch sizes and prints
// the fully resolved recipe; errors exit 1 naming file:line.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli_ranges.h"
#include "commands.h"
#include "mt/io/recipe.h"
#include "mt/train/preflight.h"

namespace mt::cli {

void add_validate_command(CLI::App& app) {
  struct Args {
    std::string recipe;
    std::vector<std::string> overrides;
    int dp = 0;
  };
  auto args = std::make_shared<Args>();
  CLI::App* cmd = app.add_subcommand("validate", "Check a recipe and print it fully resolved");
  cmd->add_option("recipe", args->recipe, "Recipe YAML file")->required();
  cmd->add_option("overrides", args->overrides, "Overrides, section.key=value (applied last)");
  cmd->add_option("--dp", args->dp, "Data-parallel size to derive the batch for (default: dist.dp, else 1)")
      ->check(integer_in(1));
  cmd->callback([args] {
    Recipe recipe = load_recipe(args->recipe, args->overrides);
    const int dp = args->dp > 0 ? args->dp : (recipe.dist.dp > 0 ? recipe.dist.dp : 1);
    check_recipe_can_run(recipe, dp);
    resolve_batch(recipe, dp);
    std::string from;
    for (const auto& s : recipe.sources) from += (from.empty() ? "" : ", ") + s;
    std::printf("# from: %s\n%s", from.c_str(), to_yaml(recipe).c_str());
  });
}

}  // namespace mt::cli
