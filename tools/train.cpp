// moetrain train RECIPE [key=value ...]: trains (or resumes) a recipe; under mpirun every rank
// runs it data-parallel. A failing rank ends the whole job rather than leaving the others hanging;
// the exit status says how the run ended (exit_status.h).
#include <cstdio>

#include "commands.h"
#include "mpi_job.h"
#include "mt/train/exit_status.h"
#include "mt/train/trainer.h"

namespace mt::cli {

void add_train_command(CLI::App& app) {
  struct Args {
    std::string recipe;
    std::vector<std::string> overrides;
  };
  auto args = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("train", "Train a recipe (resumes from its run folder's latest checkpoint)");
  c->add_option("recipe", args->recipe, "Recipe YAML file")->required();
  c->add_option("overrides", args->overrides, "Overrides as section.key=value (e.g. optim.lr=2e-4)");
  c->callback([args] {
    run_mpi_job([&](const Communicator& world) {
      Recipe recipe = load_recipe(args->recipe, args->overrides);
      TrainResult r = train(recipe, world);
      if (world.rank() == 0 && r.steps_run == 0) {
        std::printf("nothing to do: the run is already at step %ld of %ld\n", static_cast<long>(r.steps_done),
                    static_cast<long>(recipe.train.steps));
      } else if (world.rank() == 0) {
        std::printf("done: %ld steps, last loss %.4f", static_cast<long>(r.steps_done), r.last_loss);
        if (r.last_val_loss >= 0) std::printf(", val loss %.4f", r.last_val_loss);
        std::printf("%s\n", r.stopped_by_signal ? " (stopped by signal; run again to resume)" : "");
      }
      if (r.stopped_by_signal) throw ExitWith{static_cast<int>(ExitStatus::kInterrupted)};
    });
  });
}

}  // namespace mt::cli
