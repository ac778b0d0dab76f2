// moetrain estimate RECIPE: parameters (total and active per token), training FLOPs per token and
// memory per rank (weights, optimizer state, one micro-batch's activations) under the recipe's settings,
// from the recipe alone (nothing is allocated, so paper-scale models are fine); with --gpus and
// --gpu-memory, the settings that fit (mt/train/memory_plan.h).
#include <algorithm>
#include <cstdio>

#include "cli_ranges.h"
#include "commands.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/memory_estimate.h"
#include "mt/train/memory_plan.h"
#include "mt/train/preflight.h"

namespace mt::cli {

void add_estimate_command(CLI::App& app) {
  struct Args {
    std::string recipe;
    std::vector<std::string> overrides;
    int ranks = 1;
    int gpus = 0;
    std::string gpu_memory;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("estimate", "Parameters, FLOPs per token and memory per rank of a recipe");
  c->add_option("recipe", a->recipe, "Recipe YAML file")->required();
  c->add_option("overrides", a->overrides, "Overrides as section.key=value");
  c->add_option("--ranks", a->ranks, "Ranks of the job (memory is per rank)")->check(integer_in(1));
  c->add_option("--gpus", a->gpus, "Ranks (one GPU each) to plan for; with --gpu-memory: the settings that fit")
      ->check(integer_in(1));
  c->add_option("--gpu-memory", a->gpu_memory, "Memory of each GPU, e.g. 141GB (binary units)");
  c->callback([a] {
    Recipe r = load_recipe(a->recipe, a->overrides);
    check_recipe_sizes(r);
    MT_CHECK(a->gpu_memory.empty() == (a->gpus == 0), "estimate: --gpus and --gpu-memory go together (the plan ",
             "needs both), got ", a->gpus == 0 ? "only --gpu-memory" : "only --gpus");
    const int ranks = a->gpus > 0 ? a->gpus : a->ranks;
    GPTConfig cfg = gpt_config_from_recipe(r);
    ParamCounts pc = count_parameters(cfg);
    double flops = train_flops_per_token(cfg);
    bool half = r.model.dtype != ModelSection::DType::kF32;
    MemoryPerRank m = memory_per_rank(cfg, half, ranks, r.dist.ep, r.dist.zero);
    const int micro = r.train.micro_batch > 0 ? r.train.micro_batch : 1;
    const double act = activation_memory(cfg, half, micro).peak();
    const double gib = 1024.0 * 1024 * 1024;
    std::printf("recipe:              %s\n", a->recipe.c_str());
    std::printf("parameters (total):  %.3fB (%ld)\n", pc.total / 1e9, static_cast<long>(pc.total));
    std::printf("parameters (active): %.3fB per token\n", pc.active / 1e9);
    std::printf("embedding params:    %.1fM\n", pc.embedding / 1e6);
    std::printf("train FLOPs/token:   %.3g (6*N_active_non_embedding + 6*V*d + 12*L*d*T)\n", flops);
    std::printf("memory per rank:     %.2f GiB = %.2f weights+grads (%s) + %.2f AdamW state (f32) + %.2f activations "
                "(micro_batch %d, recompute %s), on %d rank(s) with dist.ep %d, dist.zero %d\n",
                (m.total() + act) / gib, m.weights_and_grads / gib, half ? "bf16, f32 grads" : "f32",
                m.optimizer_state / gib, act / gib, micro, recompute_name(cfg.recompute), ranks, r.dist.ep, r.dist.zero);
    std::printf("estimate: total_bytes=%.0f activation_bytes=%.0f\n", m.total() + act, act);
    if (a->gpus == 0) return;
    const double gpu_bytes = static_cast<double>(parse_byte_size("estimate: --gpu-memory", a->gpu_memory));
    std::vector<MemoryPlan> plans = memory_plans(r, a->gpus, gpu_bytes);
    auto fitting = std::count_if(plans.begin(), plans.end(), [](const MemoryPlan& p) { return p.fits; });
    std::printf("\nplans for %d GPUs of %s (a plan may use %.0f%%: %.3g GiB), %ld of %zu settings fit, cheapest first:\n\n",
                a->gpus, a->gpu_memory.c_str(), kUsableMemoryFraction * 100, kUsableMemoryFraction * gpu_bytes / gib,
                static_cast<long>(fitting), plans.size());
    std::printf("| dist.ep | dist.zero | micro_batch | grad_accum | recompute | GiB per rank | extra FLOPs | ZeRO gather GB/step | grad reduce GB/step | all-to-all GB/step |\n");
    std::printf("|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|\n");
    int shown = 0;
    for (const MemoryPlan& p : plans) {
      if (!p.fits || shown++ == 8) break;
      std::printf("| %d | %d | %d | %d | %s | %.3g | %.0f%% | %.3g | %.3g | %.3g |\n", p.ep, p.zero, p.micro_batch,
                  p.grad_accum, recompute_name(p.recompute), p.total() / gib, p.recompute_flops * 100,
                  p.zero_gather_bytes / 1e9, p.grad_reduce_bytes / 1e9, p.all_to_all_bytes / 1e9);
    }
    if (fitting == 0) {
      auto least = std::min_element(plans.begin(), plans.end(),
                                    [](const MemoryPlan& x, const MemoryPlan& y) { return x.total() < y.total(); });
      MT_FAIL("estimate: no setting fits ", a->gpus, " GPUs of ", a->gpu_memory, ": the smallest, ", least->overrides(),
              ", needs ", least->total() / gib, " GiB per rank; add GPUs or make the model smaller");
    }
    std::printf("\nproposed: mpirun -np %d moetrain train %s %s\n", a->gpus, a->recipe.c_str(),
                plans.front().overrides().c_str());
  });
}

}  // namespace mt::cli
