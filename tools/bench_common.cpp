// The `bench` subcommands' shared options, GPU check and event timing.
#include "bench_common.h"

#include <algorithm>

#include "mt/core/device.h"
#include "mt/core/error.h"

#ifdef MT_WITH_CUDA
#include "mt/core/cuda_context.h"
#endif

namespace mt::cli {

void add_bench_common_options(CLI::App& cmd, BenchCommon& common) {
  cmd.add_option("--device", common.device, "CUDA device index")->check(CLI::NonNegativeNumber)->capture_default_str();
  cmd.add_option("--iters", common.iters, "Timed iterations per row")->check(CLI::PositiveNumber)->capture_default_str();
  cmd.add_option("--warmup", common.warmup, "Untimed iterations before timing")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
}

void require_gpu(const char* what, const BenchCommon& common) {
#ifdef MT_WITH_CUDA
  MT_CHECK(cuda_available(), what, ": no CUDA device visible (it measures GPU kernels)");
  MT_CHECK(common.device >= 0 && common.device < cuda_device_count(), what, ": --device ", common.device, " but ",
           cuda_device_count(), " CUDA device(s) are visible");
  set_device(common.device);
#else
  (void)common;
  MT_FAIL(what, ": moetrain was built without CUDA; it measures GPU kernels (rebuild with -DMT_CUDA=ON)");
#endif
}

std::vector<double> time_interleaved(const BenchCommon& common, const std::vector<std::function<void()>>& fns) {
#ifdef MT_WITH_CUDA
  cudaStream_t stream = current_stream(common.device);
  for (int i = 0; i < common.warmup; ++i)
    for (const auto& fn : fns) fn();
  const size_t k = fns.size();
  const int iters = common.iters;
  std::vector<CudaEvent> marks(iters * k + 1);
  marks[0].record(stream);
  for (int i = 0; i < iters; ++i)
    for (size_t f = 0; f < k; ++f) {
      fns[f]();
      marks[i * k + f + 1].record(stream);
    }
  marks.back().synchronize();
  std::vector<double> medians(k);
  for (size_t f = 0; f < k; ++f) {
    std::vector<double> ms(iters);
    for (int i = 0; i < iters; ++i) ms[i] = marks[i * k + f].elapsed_ms(marks[i * k + f + 1]);
    std::nth_element(ms.begin(), ms.begin() + iters / 2, ms.end());
    medians[f] = ms[iters / 2];
  }
  return medians;
#else
  (void)common;
  (void)fns;
  MT_FAIL("bench: timing needs a CUDA build");
#endif
}

}  // namespace mt::cli
