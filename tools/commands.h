// The moetrain subcommands: each tools/<name>.cpp adds one subcommand to the CLI11 app.
// main.cpp calls every add_*_command; a subcommand's callback does the work and throws mt::Error on bad input.
#pragma once
#include <CLI/CLI.hpp>

namespace mt::cli {

// Thrown by a subcommand, after its message is printed and its resources released, to end with a
// status other than 0 or 1 (`train`: interrupted, diverged; see exit_status.h).
struct ExitWith {
  int status;
};

void add_train_command(CLI::App& app);
void add_validate_command(CLI::App& app);
void add_eval_command(CLI::App& app);
void add_generate_command(CLI::App& app);
void add_inspect_command(CLI::App& app);
void add_checkpoint_command(CLI::App& app);
void add_estimate_command(CLI::App& app);
void add_data_command(CLI::App& app);
void add_bench_command(CLI::App& app);
void add_bench_moe_command(CLI::App& bench);   // tools/bench_moe.cpp: `bench moe`, called by add_bench_command
void add_bench_step_command(CLI::App& bench);  // tools/bench_step.cpp: `bench step`, likewise
void add_bench_comm_command(CLI::App& bench);  // tools/bench_comm.cpp: `bench comm`, likewise
void add_bench_checkpoint_command(CLI::App& bench);  // tools/bench_checkpoint.cpp: `bench checkpoint`, likewise
void add_compare_command(CLI::App& app);

}  // namespace mt::cli
