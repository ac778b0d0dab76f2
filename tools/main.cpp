// moetrain: one binary, one CLI11 subcommand per tools/<name>.cpp.
// Errors from any subcommand print as "moetrain: error: ..." with exit status 1; `train` has more
// statuses (exit_status.h).
#include <cstdio>
#include <exception>

#include "commands.h"
#include "mt/core/error.h"

int main(int argc, char** argv) {
  CLI::App app{"moetrain: train GPT, MoE, Pyramid-MoE, Residual-MoE and PR-MoE language models"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  // Subcommands register here, one line each.
  mt::cli::add_estimate_command(app);
  mt::cli::add_generate_command(app);
  mt::cli::add_eval_command(app);
  mt::cli::add_train_command(app);
  mt::cli::add_validate_command(app);
  mt::cli::add_inspect_command(app);
  mt::cli::add_data_command(app);
  mt::cli::add_compare_command(app);
  mt::cli::add_bench_command(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mt::cli::ExitWith& e) {
    return e.status;
  } catch (const mt::Error& e) {
    std::fprintf(stderr, "moetrain: error: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moetrain: error: %s\n", e.what());
    return 1;
  }
  return 0;
}
