// `moetrain bench moe`: forward + backward of one MoE layer (top-1, capacity factor 1.0, bf16) against a
// dense MLP with the same active parameters, on the GPU, timed interleaved with it (bench_common.h), with
// eager launches and replayed as CUDA graphs, dropping tokens at capacity 1.0 and dropless (eager only),
// printed as a Markdown table with the ratios; then the dropping layer's phases (router, dispatch, experts,
// combine), each timed forward + backward on its own. Needs a GPU.
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.h"
#include "commands.h"
#include "mt/core/device.h"
#include "mt/core/error.h"

#ifdef MT_WITH_CUDA
#include "mt/autograd/engine.h"
#include "mt/core/cuda_context.h"
#include "mt/core/device_graph.h"
#include "mt/nn/mlp.h"
#include "mt/nn/moe_dispatch.h"
#include "mt/nn/moe_layer.h"
#include "mt/ops/ops.h"
#endif

namespace mt::cli {
namespace {

struct BenchMoeOptions {
  BenchCommon common;
  int64_t tokens = 16384;
  int64_t d_model = 768;
  int64_t hidden = 3072;
  std::vector<int64_t> experts = {8, 32};
};

#ifdef MT_WITH_CUDA

class MoeBench {
 public:
  explicit MoeBench(const BenchMoeOptions& o) : opt_(o), dev_(Device::cuda(o.common.device)), gen_(1) {}

  void run() {
    cudaDeviceProp prop{};
    MT_CUDA_CHECK(cudaGetDeviceProperties(&prop, opt_.common.device));
    const int64_t s = opt_.tokens, d = opt_.d_model, h = opt_.hidden;
    std::printf("# moetrain bench moe on %s (cuda:%d): %lld tokens, d %lld, hidden %lld, bf16, top-1, capacity factor "
                "1.0; forward + backward, median of %d iterations after %d warm-up\n\n",
                prop.name, opt_.common.device, static_cast<long long>(s), static_cast<long long>(d),
                static_cast<long long>(h), opt_.common.iters, opt_.common.warmup);
    x_ = normal({s, d}, 0.0, 1.0, gen_, {DType::kBF16, dev_});
    probe_ = normal({s, d}, 0.0, 1e-2, gen_, {DType::kBF16, dev_});
    // Useful work: two GEMMs of S x d x h, forward (2 flops each) and backward (4 each).
    const double flops = 12.0 * static_cast<double>(s) * static_cast<double>(d) * static_cast<double>(h);

    MLP dense(d, h, /*dropout=*/0.0, gen_);
    dense.to(dev_, DType::kBF16);
    auto dense_step = [&] {
      Tensor x = leaf(x_);
      dense.forward(x).backward(probe_);
      dense.zero_grad();
    };
    std::printf("| layer | experts | capacity | dropped | fwd+bwd (ms) | TFLOP/s (useful) | vs dense | replayed graph (ms) "
                "| vs dense, replayed |\n");
    std::printf("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    std::vector<std::vector<double>> phases;
    for (int64_t e : opt_.experts)
      for (bool dropless : {false, true}) {
        MoEConfig c;
        c.d_model = d;
        c.hidden = h;
        c.experts = e;
        c.top_k = 1;
        c.capacity_factor = 1.0;
        c.drop_tokens = !dropless;  // dropless: packed, each expert's GEMMs on its own rows
        MoELayer moe(c, gen_);
        moe.to(dev_, DType::kBF16);
        auto moe_step = [&] {
          Tensor x = leaf(x_);
          Tensor out = moe.forward(x, gen_);
          run_backward({out, moe.weighted_loss()}, {probe_, Tensor()}, RetainGraph::kNo);
          moe.zero_grad();
        };
        // The dense MLP and the MoE layer timed round by round: both see the same clocks. First with eager
        // launches, then each step captured as a CUDA graph, as training replays its steps (Note [The
        // captured step]): without the host's launch gaps, what is left is the kernels' own time. A dropless
        // layer reads its capacity back to the host, so it is not captured (as training leaves it eager).
        std::vector<double> ms = time_interleaved(opt_.common, {dense_step, moe_step});
        std::vector<double> replayed;
        if (!dropless) {
          DeviceGraph dense_graph(dev_, &dense, dense_step), moe_graph(dev_, &moe, moe_step);
          replayed = time_interleaved(opt_.common, {[&] { dense_graph.replay(); }, [&] { moe_graph.replay(); }});
        }
        const bool graphs = !replayed.empty();
        std::string dense_replayed = graphs ? cell("%.3f", replayed[0]) : "-";
        std::string moe_replayed = graphs ? cell("%.3f", replayed[1]) : "-";
        std::string replayed_ratio = graphs ? cell("%.2fx", replayed[1] / replayed[0]) : "-";
        std::printf("| dense MLP | - | - | - | %.3f | %.1f | 1.00x | %s | %s |\n", ms[0], flops / (ms[0] * 1e-3) / 1e12,
                    dense_replayed.c_str(), graphs ? "1.00x" : "-");
        std::printf("| MoE layer%s | %lld | %lld | %.1f%% | %.3f | %.1f | %.2fx | %s | %s |\n",
                    dropless ? ", dropless" : "", static_cast<long long>(e),
                    static_cast<long long>(moe.stats().capacity), 100.0 * moe.stats().drop_rate(), ms[1],
                    flops / (ms[1] * 1e-3) / 1e12, ms[1] / ms[0], moe_replayed.c_str(), replayed_ratio.c_str());
        std::fflush(stdout);
        if (dropless) continue;
        std::vector<double> row = phase_times(moe);
        row.push_back(ms[1]);
        phases.push_back(row);
      }
    std::printf("\nTarget: MoE / dense <= 1.2x (dropless: 1.3x). Phases of the MoE layer, each forward + backward "
                "on its own (ms):\n\n");
    std::printf("| experts | router | dispatch | experts (bmm) | combine | sum | whole layer |\n");
    std::printf("|---:|---:|---:|---:|---:|---:|---:|\n");
    for (size_t i = 0; i < phases.size(); ++i) {
      const std::vector<double>& p = phases[i];
      std::printf("| %lld | %.3f | %.3f | %.3f | %.3f | %.3f | %.3f |\n", static_cast<long long>(opt_.experts[i]), p[0],
                  p[1], p[2], p[3], p[0] + p[1] + p[2] + p[3], p[4]);
    }
    std::fflush(stdout);
  }

 private:
  double time_ms(const std::function<void()>& fn) { return time_interleaved(opt_.common, {fn})[0]; }
  static std::string cell(const char* format, double v) {
    char b[32];
    std::snprintf(b, sizeof b, format, v);
    return b;
  }

  // A fresh leaf over t's storage that requires grad (its gradient is dropped with it).
  static Tensor leaf(const Tensor& t) {
    Tensor x = t.detach();
    x.set_requires_grad(true);
    return x;
  }

  // Router, dispatch, experts and combine of `moe`, each forward + backward from leaf inputs.
  std::vector<double> phase_times(MoELayer& moe) {
    RoutingResult routing = moe.gate().forward(x_, gen_);
    const RoutingTable& table = routing.table;
    Tensor buffer = dispatch_tokens(x_, table);  // (E, C, d)
    Tensor expert_out = moe.experts().forward(buffer);
    Tensor buffer_probe = normal(buffer.shape(), 0.0, 1e-2, gen_, {DType::kBF16, dev_});
    Tensor weight_probe = normal(table.weight.shape(), 0.0, 1e-2, gen_, {table.weight.dtype(), dev_});
    double router = time_ms([&] {
      Tensor x = leaf(x_);
      RoutingResult r = moe.gate().forward(x, gen_);
      run_backward({r.table.weight, r.aux_loss}, {weight_probe, Tensor()}, RetainGraph::kNo);
      moe.zero_grad();
    });
    double dispatch = time_ms([&] {
      Tensor x = leaf(x_);
      dispatch_tokens(x, table).backward(buffer_probe);
    });
    double experts = time_ms([&] {
      Tensor b = leaf(buffer.detach());
      moe.experts().forward(b).backward(buffer_probe);
      moe.zero_grad();
    });
    double combine = time_ms([&] {
      RoutingTable t = table;
      t.weight = leaf(table.weight.detach());
      Tensor y = leaf(expert_out.detach());
      combine_tokens(y, t).backward(probe_);
    });
    return {router, dispatch, experts, combine};
  }

  BenchMoeOptions opt_;
  Device dev_;
  Generator gen_;
  Tensor x_, probe_;
};

#endif

}  // namespace

void add_bench_moe_command(CLI::App& bench) {
  auto opt = std::make_shared<BenchMoeOptions>();
  opt->common.iters = 20;
  CLI::App* moe = bench.add_subcommand(
      "moe", "One MoE layer (top-1, capacity factor 1.0 and dropless, bf16) vs a dense MLP of the same active size, fwd+bwd, "
             "with a per-phase breakdown, as Markdown tables");
  add_bench_common_options(*moe, opt->common);
  moe->add_option("--tokens", opt->tokens, "Tokens per layer call")->check(CLI::PositiveNumber)->capture_default_str();
  moe->add_option("--d-model", opt->d_model, "Model width")->check(CLI::PositiveNumber)->capture_default_str();
  moe->add_option("--hidden", opt->hidden, "Hidden width of the MLP and of each expert")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  moe->add_option("--experts", opt->experts, "Expert counts, one table row each")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  moe->callback([opt] {
    require_gpu("bench moe", opt->common);
#ifdef MT_WITH_CUDA
    MoeBench(*opt).run();
#endif
  });
}

}  // namespace mt::cli
