// What the `bench` subcommands share: their common options, the check for a usable GPU, and timing
// with CUDA events (median of iterations timed one by one, several ops interleaved round by round).
#pragma once
#include <CLI/CLI.hpp>

#include <functional>
#include <vector>

namespace mt::cli {

struct BenchCommon {
  int device = 0;
  int iters = 50;
  int warmup = 3;
};

// --device, --iters and --warmup on `cmd`, stored in `common`.
void add_bench_common_options(CLI::App& cmd, BenchCommon& common);

// Throws a clear error unless this build has CUDA and `common.device` is a visible GPU; `what` names
// the subcommand ("bench ops").
void require_gpu(const char* what, const BenchCommon& common);

// Median milliseconds of each fn over common.iters rounds, after common.warmup rounds, on the current
// stream of common.device. A round runs every fn once, each between two events, so that all of them see
// the same clocks and temperature (a GEMM measured first on a cool GPU ran 12% faster than the same
// GEMM measured after others: bench/NOTES.md). Needs a CUDA build.
std::vector<double> time_interleaved(const BenchCommon& common, const std::vector<std::function<void()>>& fns);

}  // namespace mt::cli
