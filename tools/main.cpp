// moetrain: one binary, one CLI11 subcommand per tools/<name>.cpp.
// Errors from any subcommand print as "moetrain: error: ..." with exit status 1 (`train` has more
// statuses: exit_status.h); a misspelt subcommand gets the closest name, and an exception that is
// not ours (out of memory, a library's) is named with the command that was running.
#include <algorithm>
#include <cstdio>
#include <exception>
#include <new>
#include <string>
#include <vector>

#include "commands.h"
#include "mt/core/error.h"
#include "mt/io/recipe_did_you_mean.h"

namespace {

// The command line, for messages: "train recipes/x.yaml optim.lr=1e-3".
std::string command_line(int argc, char** argv) {
  std::string out;
  for (int i = 1; i < argc; ++i) out += (i > 1 ? " " : "") + std::string(argv[i]);
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"moetrain: train GPT, MoE, Pyramid-MoE, Residual-MoE and PR-MoE language models"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Show help for every subcommand");
  app.failure_message([](const CLI::App*, const CLI::Error& e) {
    return "moetrain: error: " + std::string(e.what()) + "\nRun with --help for more information.\n";
  });
  // Subcommands register here, one line each.
  mt::cli::add_estimate_command(app);
  mt::cli::add_generate_command(app);
  mt::cli::add_eval_command(app);
  mt::cli::add_train_command(app);
  mt::cli::add_validate_command(app);
  mt::cli::add_inspect_command(app);
  mt::cli::add_checkpoint_command(app);
  mt::cli::add_data_command(app);
  mt::cli::add_compare_command(app);
  mt::cli::add_bench_command(app);

  std::vector<std::string> commands;
  for (const CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) commands.push_back(sub->get_name());
  if (argc > 1 && argv[1][0] != '-' && std::find(commands.begin(), commands.end(), argv[1]) == commands.end()) {
    std::string all;
    for (const std::string& c : commands) all += (all.empty() ? "" : ", ") + c;
    std::fprintf(stderr, "moetrain: error: unknown command '%s'%s; commands: %s\n", argv[1],
                 mt::did_you_mean(argv[1], commands).c_str(), all.c_str());
    return 1;
  }
  const std::string running = command_line(argc, argv);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const mt::cli::ExitWith& e) {
    return e.status;
  } catch (const mt::Error& e) {
    std::fprintf(stderr, "moetrain: error: %s\n", e.what());
    return 1;
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr,
                 "moetrain: error: out of memory (an allocation failed) while running 'moetrain %s': its inputs, or "
                 "a recipe's sizes (model.d_model, model.seq_len, model.vocab_size, moe.experts, train.micro_batch), "
                 "need more memory than this process may use ('moetrain estimate RECIPE' shows a recipe's)\n",
                 running.c_str());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "moetrain: error: while running 'moetrain %s': %s\n", running.c_str(), e.what());
    return 1;
  }
  return 0;
}
