// `moetrain bench step RECIPE [k=v ...]`: the recipe's training step (forward, cross-entropy + MoE aux
// loss, backward, gradient reduction, clip, optimizer, zero_grad) on random tokens: tokens/s, MFU and peak
// memory timed without instrumentation, then the step's time by category from an OpProfiler (CUDA
// events around every kernel-table and NCCL call; the wall clock per call on CPU), as Markdown.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "commands.h"
#include "mpi_job.h"
#include "mt/core/device_copy.h"
#include "mt/core/storage.h"
#include "mt/dist/communicator.h"
#include "mt/dist/process_groups.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/ops/op_profiler.h"
#include "mt/ops/ops.h"
#include "mt/train/distributed_optimizer.h"
#include "mt/train/expert_sharding.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/train_step.h"
#include "mt/train/training_run.h"
#include "mt/train/validation.h"

#ifdef MT_WITH_CUDA
#include "mt/core/cuda_context.h"
#endif

namespace mt::cli {
namespace {

constexpr double kPeakFlops = 989e12;  // H200 bf16 dense (REFERENCE.md)

struct BenchStepOptions {
  std::string recipe;
  std::vector<std::string> overrides;
  int steps = 10;
  int warmup = 3;
};

class StepBench {
 public:
  StepBench(const BenchStepOptions& o, const Communicator& world)
      : opt_(o), r_(load_recipe(o.recipe, o.overrides)), world_(world) {
    MT_CHECK(r_.distill.teacher.empty(), "bench step: distill.teacher is set; the profile covers LM training only");
    resolve_batch(r_, world.size());
    device_ = resolve_device(r_, world);
#ifdef MT_WITH_CUDA
    if (device_.is_cuda()) set_device(device_.index);
#endif
    cfg_ = gpt_config_from_recipe(r_);
    groups_.emplace(world, r_.dist.ep, cfg_.experts_per_block, r_.dist.node_size);
    init_gen_ = std::make_unique<Generator>(static_cast<uint64_t>(r_.train.seed));
    dropout_gen_ = std::make_unique<Generator>(static_cast<uint64_t>(r_.train.seed) + 1 + world.rank());
    model_ = std::make_unique<GPT>(cfg_, *init_gen_, *dropout_gen_, &*groups_);
    model_->to(device_, resolve_dtype(r_, device_));
    model_->train();
    sharding_ = expert_sharding(*model_, &*groups_);
    optimizer_ = std::make_unique<DistributedOptimizer>(r_, *model_, sharding_, world_);
    train_step_ = std::make_unique<TrainStep>(*model_, *optimizer_, r_, world.size(), device_, *dropout_gen_);
    // One batch of uniform random tokens per micro-batch, made once: the step's time is the model's.
    std::mt19937_64 rng(static_cast<uint64_t>(r_.train.seed) * 7919 + world.rank());
    std::uniform_int_distribution<int32_t> token(0, r_.model.vocab_size - 1);
    const int64_t b = r_.train.micro_batch, t = r_.model.seq_len;
    for (int m = 0; m < r_.train.grad_accum; ++m) {
      std::vector<int32_t> rows(b * (t + 1));
      for (int32_t& id : rows) id = token(rng);
      batches_.push_back(to_token_batch(rows, b, t, device_));
    }
  }

  void run() {
    const bool lead = world_.rank() == 0;
    const double tokens_per_step = static_cast<double>(r_.train.global_batch) * r_.model.seq_len;
    // At least TrainStep's warm-up, so the timed steps replay the CUDA graph where there is one.
    for (int i = 0; i < std::max(opt_.warmup, TrainStep::kWarmupSteps + 1); ++i) step();
    // Un-instrumented: the throughput figures.
    sync();
    auto t0 = std::chrono::steady_clock::now();
    double loss = 0;
    exposed_seconds_ = 0;
    for (int i = 0; i < opt_.steps; ++i) loss = step();
    sync();
    exposed_ms_ = exposed_seconds_ * 1e3 / opt_.steps;
    const double plain_ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / opt_.steps;
    const double tok_s = tokens_per_step / (plain_ms * 1e-3);
    // Instrumented: the mean step profile.
    StepProfile mean;
    {
      OpProfiler profiler(device_);
      profiler.begin_step();  // one more warm-up: the profiler's event pool grows in it
      step();
      profiler.end_step();
      for (int i = 0; i < opt_.steps; ++i) {
        profiler.begin_step();
        step();
        StepProfile p = profiler.end_step();
        for (int c = 0; c < kOpCategories; ++c) {
          mean.ms[c] += p.ms[c] / opt_.steps;
          mean.calls[c] += p.calls[c];
        }
        for (const auto& [op, t] : p.by_op) {
          OpTotal& m = mean.by_op[op];
          m.ms += t.ms / opt_.steps;
          m.calls += t.calls;
          m.max_ms = std::max(m.max_ms, t.max_ms);
        }
        mean.step_ms += p.step_ms / opt_.steps;
      }
    }
    if (lead) print(plain_ms, tok_s, loss, mean);
  }

 private:
  // One optimizer step, as the trainer runs it; returns the mean loss of its micro-batches on this rank.
  double step() {
    const StepSums sums = train_step_->run(batches_, nullptr, r_.optim.lr);
    exposed_seconds_ += optimizer_->exposed_communication_seconds();
    return sums.loss / r_.train.grad_accum;
  }

  void sync() const {
    if (device_.is_cuda()) synchronize(device_);
  }

  std::string device_name() const {
#ifdef MT_WITH_CUDA
    if (device_.is_cuda()) {
      cudaDeviceProp prop{};
      MT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device_.index));
      return std::string(prop.name) + " (" + device_.str() + ")";
    }
#endif
    return device_.str();
  }

  void print(double plain_ms, double tok_s, double loss, const StepProfile& p) const {
    const ParamCounts pc = count_parameters(cfg_);
    const double flops = train_flops_per_token(cfg_);
    const double mfu = flops * tok_s / (kPeakFlops * world_.size());
    const double peak_gib = static_cast<double>(allocator_stats(device_).peak_allocated) / (1u << 30);
    std::printf("# moetrain bench step %s on %s x %d rank(s)\n\n", opt_.recipe.c_str(), device_name().c_str(),
                world_.size());
    std::printf("%d layers, d %d, %d heads, T %d, %d sequences x %d micro-batches per rank per step, %s, %.1fM parameters "
                "(%.1fM active per token); %d steps after %d warm-up, uniform random tokens.\n\n",
                cfg_.layers, cfg_.d_model, cfg_.heads, cfg_.seq_len, r_.train.micro_batch, r_.train.grad_accum,
                dtype_name(resolve_dtype(r_, device_)), pc.total / 1e6, pc.active / 1e6, opt_.steps, opt_.warmup);
    std::printf("Un-instrumented: %.2f ms/step, %.0f tok/s (all ranks), ", plain_ms, tok_s);
    if (device_.is_cuda())
      std::printf("MFU %.1f%% (%.3g FLOP/token = 6 N_active_non_embedding + 6 V d + 12 L d T; peak %.0f TFLOP/s "
                  "per GPU), ", 100.0 * mfu, flops, kPeakFlops / 1e12);
    std::printf("peak memory %.2f GiB, loss %.3f; ", peak_gib, loss);
    if (train_step_->replaying())
      std::printf("the timed steps replay one CUDA graph (Note [The captured step]); the profile below times the "
                  "same step run eagerly.\n\n");
    else
      std::printf("eager steps: %s.\n\n", train_step_->eager_reason().c_str());
    if (world_.size() > 1)
      std::printf("Data-parallel all-reduce (dist.overlap %s): the host waited %.3f ms per step for it after the backward "
                  "(rank 0).\n\n",
                  r_.dist.overlap ? "on" : "off", exposed_ms_);

    const double step = p.step_ms > 0 ? p.step_ms : 1.0;
    const double idle = p.step_ms - p.busy_ms();
    int64_t calls = 0;
    std::printf("| category | ms / step | %% of step | calls / step |\n|---|---:|---:|---:|\n");
    for (int c = 0; c < kOpCategories; ++c) {
      calls += p.calls[c];
      std::printf("| %s | %.3f | %.1f%% | %lld |\n", op_category_name(static_cast<OpCategory>(c)), p.ms[c],
                  100.0 * p.ms[c] / step, static_cast<long long>(p.calls[c] / opt_.steps));
    }
    std::printf("| %s | %.3f | %.1f%% | - |\n",
                device_.is_cuda() ? "idle: GPU waiting between timed calls" : "outside the timed calls (host)", idle,
                100.0 * idle / step);
    std::printf("| step (instrumented) | %.3f | 100%% | %lld |\n\n", p.step_ms,
                static_cast<long long>(calls / opt_.steps));
    // The ops behind those categories, the costliest first: where a fusion would pay.
    std::vector<std::pair<std::string, OpTotal>> ops(p.by_op.begin(), p.by_op.end());
    std::sort(ops.begin(), ops.end(), [](const auto& a, const auto& b) { return a.second.ms > b.second.ms; });
    std::printf("| op (top %d) | ms / step | %% of step | calls / step | slowest call ms |\n|---|---:|---:|---:|---:|\n",
                static_cast<int>(std::min<size_t>(ops.size(), 15)));
    for (size_t i = 0; i < ops.size() && i < 15; ++i)
      std::printf("| %s | %.3f | %.1f%% | %lld | %.3f |\n", ops[i].first.c_str(), ops[i].second.ms,
                  100.0 * ops[i].second.ms / step, static_cast<long long>(ops[i].second.calls / opt_.steps),
                  ops[i].second.max_ms);
    std::printf("\n");
    if (device_.is_cuda())
      std::printf("Times from a CUDA event pair around every kernel-table and NCCL call (categories: the slot's, "
                  "or the phase's: the loss, the optimizer, the MoE router's forward, the MoE dispatch/combine backward). "
                  "Recording them costs host time, so the instrumented step (%.2f ms) is longer than the "
                  "un-instrumented one (%.2f ms) and its idle share is an upper bound. Idle also holds host syncs "
                  "(the step's read-back of its losses and norm) and copies.\n",
                  p.step_ms, plain_ms);
    else
      std::printf("CPU: wall-clock time of every kernel-table call; the rest of the step is framework overhead.\n");
    std::printf("\nbench-step: step_ms=%.3f tokens_per_s=%.1f mfu=%.4f peak_gib=%.3f peak_bytes=%zu exposed_comm_ms=%.3f\n",
                plain_ms, tok_s, device_.is_cuda() ? mfu : 0.0, peak_gib, allocator_stats(device_).peak_allocated,
                exposed_ms_);
    std::fflush(stdout);
  }

  BenchStepOptions opt_;
  Recipe r_;
  const Communicator& world_;
  Device device_;
  GPTConfig cfg_;
  std::optional<ProcessGroups> groups_;
  std::unique_ptr<Generator> init_gen_, dropout_gen_;
  std::unique_ptr<GPT> model_;
  ExpertSharding sharding_;
  std::unique_ptr<DistributedOptimizer> optimizer_;
  std::unique_ptr<TrainStep> train_step_;
  std::vector<TokenBatch> batches_;
  double exposed_seconds_ = 0;  // the host's waits for the data-parallel all-reduce, summed over steps
  double exposed_ms_ = 0;       // per un-instrumented step
};

}  // namespace

void add_bench_step_command(CLI::App& bench) {
  auto opt = std::make_shared<BenchStepOptions>();
  CLI::App* c = bench.add_subcommand(
      "step", "A recipe's training step on random tokens: tokens/s, MFU, peak memory, and GPU time by category "
              "(GEMM, attention, norms, MoE, optimizer, communication, idle) as a Markdown table");
  c->add_option("recipe", opt->recipe, "Recipe YAML file")->required();
  c->add_option("overrides", opt->overrides, "Overrides as section.key=value (e.g. train.global_batch=16)");
  c->add_option("--steps", opt->steps, "Timed steps, un-instrumented and then profiled")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--warmup", opt->warmup, "Untimed steps first")->check(CLI::NonNegativeNumber)->capture_default_str();
  c->callback([opt] { run_mpi_job([&](const Communicator& world) { StepBench(*opt, world).run(); }); });
}

}  // namespace mt::cli
