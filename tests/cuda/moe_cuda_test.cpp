// CPU-vs-CUDA tests of the MoE ops and layer. For identical logits (and noise) the fused routing
// tables (experts, slots, counters, buffer map) must be identical — top-1 and top-2, dropping and
// dropless, ties, partial blocks, few and many experts — and the weights, logsumexps and loss
// statistics equal within rounding; the row moves and their gradients within a per-dtype tolerance;
// a whole MoE layer's output and gradients within f32 / bf16 tolerance. Skipped without a GPU.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "mt/core/device.h"
#include "mt/graph/grad_mode.h"
#include "mt/nn/moe_layer.h"
#include "mt/nn/moe_routing.h"
#include "mt/ops/moe_ops.h"
#include "mt/ops/ops.h"

namespace mt {
namespace {

#define MT_REQUIRE_GPU() \
  if (!cuda_available()) GTEST_SKIP() << "no CUDA device visible: this test needs a GPU"

Device gpu() { return Device::cuda(0); }

// Uniform values in [lo, hi) as `dtype` on the CPU; `step` > 0 rounds them to multiples of step (ties).
Tensor random_input(const Shape& shape, DType dtype, uint64_t seed, double lo = -2.0, double hi = 2.0,
                    double step = 0.0) {
  Generator g(seed);
  Tensor f = uniform(shape, lo, hi, g, {DType::kF64, Device::cpu()});
  if (step > 0) {
    std::vector<double> v = f.to_vector<double>();
    for (double& x : v) x = std::round(x / step) * step;
    f = Tensor::from_vector<double>(v, shape);
  }
  return cast(f, dtype);
}

void expect_equal(const Tensor& cpu, const Tensor& cuda, const std::string& what) {
  ASSERT_EQ(cpu.shape(), cuda.shape()) << what;
  ASSERT_TRUE(cuda.device().is_cuda()) << what;
  std::vector<double> a = cpu.to_vector<double>(), b = cuda.to_vector<double>();
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i] != b[i] && bad++ == 0) first = static_cast<int64_t>(i);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.size() << " elements differ; first at " << first << ": cpu "
                    << (first >= 0 ? a[first] : 0) << ", cuda " << (first >= 0 ? b[first] : 0);
}

// |cuda - cpu| <= rtol * (|cpu| + max |cpu|) elementwise.
void expect_close(const Tensor& cpu, const Tensor& cuda, double rtol, const std::string& what) {
  ASSERT_EQ(cpu.shape(), cuda.shape()) << what;
  ASSERT_TRUE(cuda.device().is_cuda()) << what;
  std::vector<double> a = cpu.to_vector<double>(), b = cuda.to_vector<double>();
  double scale = 0;
  for (double x : a) scale = std::max(scale, std::abs(x));
  int64_t bad = 0, first = -1;
  for (size_t i = 0; i < a.size(); ++i)
    if (!(std::abs(a[i] - b[i]) <= rtol * (std::abs(a[i]) + scale)) && bad++ == 0) first = static_cast<int64_t>(i);
  EXPECT_EQ(bad, 0) << what << ": " << bad << " of " << a.size() << " elements differ; first at " << first << ": cpu "
                    << (first >= 0 ? a[first] : 0) << ", cuda " << (first >= 0 ? b[first] : 0);
}

double rtol_for(DType d) {
  switch (d) {
    case DType::kF64: return 1e-10;
    case DType::kF32: return 1e-5;
    case DType::kBF16: return 2e-2;
    default: return 4e-3;
  }
}

struct RouteCase {
  int64_t tokens, experts, top_k;
  bool dropless;
  bool noise;
  double tie_step;  // > 0: logits on a coarse grid, so many rows have tied experts
  DType dtype;
};

std::string describe(const RouteCase& c) {
  return "S " + std::to_string(c.tokens) + ", E " + std::to_string(c.experts) + ", top-" + std::to_string(c.top_k) +
         (c.dropless ? ", dropless" : ", dropping") + (c.noise ? ", noise" : "") + (c.tie_step > 0 ? ", ties" : "") +
         ", " + dtype_name(c.dtype);
}

TEST(CudaMoeRoute, TablesMatchTheCpuExactly) {
  MT_REQUIRE_GPU();
  const RouteCase cases[] = {
      {1000, 8, 1, false, false, 0.0, DType::kF32},   // capacity 125: drops
      {1000, 8, 1, true, false, 0.0, DType::kF32},    // dropless
      {4099, 32, 2, false, false, 0.25, DType::kF32},  // partial last block, ties
      {4099, 32, 2, true, true, 0.0, DType::kF32},    // Gumbel noise on the second choice
      {777, 3, 1, false, true, 0.5, DType::kF32},     // noisy top-1, few experts
      {600, 300, 2, false, false, 0.0, DType::kF32},  // many experts, tiny capacity
      {513, 16, 4, false, true, 0.0, DType::kF64},
      {1, 8, 2, false, false, 0.0, DType::kF32},
      {20000, 64, 1, false, false, 0.125, DType::kF32},  // many blocks, biased logits below
  };
  uint64_t seed = 100;
  for (const RouteCase& c : cases) {
    SCOPED_TRACE(describe(c));
    Tensor logits = random_input({c.tokens, c.experts}, c.dtype, ++seed, -2.0, 2.0, c.tie_step);
    if (c.tokens == 20000) {  // a skewed gate: expert 0 is everyone's favourite, far over capacity
      Tensor bias = zeros({1, c.experts});
      NoGradGuard ng;
      fill_(bias.narrow(1, 0, 1), 1.5);
      logits = add(logits, bias);
    }
    Tensor noise = c.noise ? random_input({c.tokens, c.experts}, c.dtype, ++seed, -1.0, 3.0) : Tensor();
    const int64_t limit =
        c.dropless ? c.tokens : expert_capacity(c.tokens, c.experts, c.top_k, 1.0, /*min_capacity=*/4);
    MoeRouting want = moe_route(logits, noise, c.top_k, limit);
    MoeRouting got = moe_route(logits.to(gpu()), noise.defined() ? noise.to(gpu()) : Tensor(), c.top_k, limit);
    expect_equal(want.expert, got.expert, "expert");
    expect_equal(want.slot, got.slot, "slot");
    expect_equal(want.counts, got.counts, "counts");
    const double rtol = rtol_for(c.dtype);
    expect_close(want.weight, got.weight, rtol, "weight");
    expect_close(want.lse, got.lse, rtol, "lse");
    expect_close(want.stats, got.stats, rtol, "stats");

    std::vector<int64_t> routed = want.counts.select(0, 0).to_vector<int64_t>();
    const int64_t capacity = c.dropless ? *std::max_element(routed.begin(), routed.end()) : limit;
    expect_equal(moe_buffer_map(want.expert, want.slot, c.experts, capacity),
                 moe_buffer_map(got.expert, got.slot, c.experts, capacity), "buffer map");
  }
}

// Random token selection's keepers (one block per expert, a radix select on the draws) against the CPU's
// sort: balanced and skewed choices, draws on a coarse grid (many ties at the threshold), capacities
// below and above the routed counts, a partial last block of tokens.
TEST(CudaMoeSelect, KeepersAndSlotsMatchTheCpuExactly) {
  MT_REQUIRE_GPU();
  struct Case {
    int64_t tokens, experts, capacity;
    double step;  // > 0: draws on multiples of step (ties)
    bool skewed;  // expert 0 takes most tokens
  };
  const Case cases[] = {{16384, 8, 2048, 0.0, false}, {16384, 8, 2048, 0.0, true},  {4099, 32, 129, 0.125, false},
                        {4099, 32, 129, 0.125, true}, {1000, 3, 4000, 0.0, false}, {777, 300, 3, 0.5, true},
                        {1, 8, 1, 0.0, false}};
  uint64_t seed = 900;
  for (const Case& c : cases) {
    SCOPED_TRACE("S " + std::to_string(c.tokens) + ", E " + std::to_string(c.experts) + ", C " +
                 std::to_string(c.capacity) + (c.step > 0 ? ", ties" : "") + (c.skewed ? ", skewed" : ""));
    Tensor pick = random_input({c.tokens}, DType::kF64, ++seed, 0.0, 1.0);
    std::vector<double> p = pick.to_vector<double>();
    std::vector<int64_t> choice(c.tokens);
    for (int64_t t = 0; t < c.tokens; ++t)
      choice[t] = c.skewed && p[t] < 0.7 ? 0 : std::min<int64_t>(c.experts - 1, static_cast<int64_t>(p[t] * c.experts));
    Tensor expert = Tensor::from_vector<int64_t>(choice, {c.tokens, 1});
    Tensor u = random_input({c.tokens, c.experts}, DType::kF32, ++seed, 0.0, 1.0, c.step);
    MoeSelection want = moe_select(expert, u, c.capacity);
    MoeSelection got = moe_select(expert.to(gpu()), u.to(gpu()), c.capacity);
    expect_equal(want.slot, got.slot, "slot");
    expect_equal(want.kept, got.kept, "kept");
  }
}

TEST(CudaMoeRoute, RouteGivesTheSameTableAndLossesOnBothDevices) {
  MT_REQUIRE_GPU();
  // DeepSpeed's defaults (RTS for top-1, second-expert sampling for top-2), topkgating for k = 3,
  // in the given and the sequence-major order; the draws are made once and fed to both devices.
  for (int64_t k : {1, 2, 3}) {
    for (bool drop : {true, false}) {
      for (int64_t seq : {0, 100}) {
        SCOPED_TRACE("top-" + std::to_string(k) + (drop ? ", dropping" : ", dropless") + ", T " + std::to_string(seq));
        RoutingOptions o;
        o.top_k = k;
        o.drop_tokens = drop;
        o.capacity_factor = 1.0;
        o.sequence_length = seq;
        o.packed_row_block = 128;  // dropless: both devices pack in the GPU's blocks
        Tensor logits = random_input({3000, 8}, DType::kF32, 7 + k);
        Generator draws(11);
        RoutingNoise cpu_noise, gpu_noise;
        cpu_noise.gumbel = random_input({3000, 8}, DType::kF32, 20 + k);
        cpu_noise.uniform = rand({3000, 8}, draws);
        gpu_noise.gumbel = cpu_noise.gumbel.to(gpu());
        gpu_noise.uniform = cpu_noise.uniform.to(gpu());
        RoutingOptions on_gpu = o;
        o.noise = &cpu_noise;
        on_gpu.noise = &gpu_noise;
        Generator g1(1), g2(1);
        RoutingResult want = route(logits, o, g1), got = route(logits.to(gpu()), on_gpu, g2);
        EXPECT_EQ(want.table.capacity, got.table.capacity);
        expect_equal(want.table.expert, got.table.expert, "expert");
        expect_equal(want.table.slot, got.table.slot, "slot");
        expect_equal(want.table.buffer_choice, got.table.buffer_choice, "buffer map");
        EXPECT_EQ(want.table.expert_rows, got.table.expert_rows);
        EXPECT_EQ(got.table.packed(), !drop);
        if (!drop) expect_equal(want.table.buffer_row, got.table.buffer_row, "packed rows");
        expect_close(want.table.weight, got.table.weight, 1e-5, "weight");
        EXPECT_EQ(want.stats.kept(), got.stats.kept());
        EXPECT_EQ(want.stats.routed(), got.stats.routed());
        EXPECT_NEAR(want.aux_loss.item(), got.aux_loss.item(), 1e-5);
        EXPECT_NEAR(want.z_loss.item(), got.z_loss.item(), 1e-4);
      }
    }
  }
}

TEST(CudaMoeRows, PermuteUnpermuteAndTheirGradientsMatchTheCpu) {
  MT_REQUIRE_GPU();
  const int64_t tokens = 300, experts = 4, k = 2;
  Tensor logits = random_input({tokens, experts}, DType::kF32, 11);
  const int64_t capacity = 100;  // under the 150 a balanced top-2 needs: some choices are dropped
  MoeRouting r = moe_route(logits, Tensor(), k, capacity);
  MoeRowMap cpu_map{r.expert, r.slot, moe_buffer_map(r.expert, r.slot, experts, capacity), capacity};
  MoeRowMap gpu_map{r.expert.to(gpu()), r.slot.to(gpu()), cpu_map.buffer_choice.to(gpu()), capacity};
  for (DType dtype : {DType::kF32, DType::kF64, DType::kBF16, DType::kF16}) {
    for (int64_t d : {13, 64}) {  // a scalar path and the 16-byte path
      SCOPED_TRACE(std::string(dtype_name(dtype)) + ", d " + std::to_string(d));
      DType wdtype = dtype == DType::kF64 ? DType::kF64 : DType::kF32;
      Tensor x = random_input({tokens, d}, dtype, 21);
      Tensor y = random_input({experts * capacity, d}, dtype, 22);
      Tensor w = random_input({tokens, k}, wdtype, 23, 0.0, 1.0);
      Tensor probe = random_input({tokens, d}, dtype, 24);       // weighs the unpermute output
      Tensor probe_buf = random_input({experts * capacity, d}, dtype, 25);  // weighs the permute output
      auto run = [&](const MoeRowMap& map, Device dev, std::vector<Tensor>& grads) {
        Tensor xd = x.to(dev).detach(), yd = y.to(dev).detach(), wd = w.to(dev).detach();  // fresh leaves
        xd.set_requires_grad(true);
        yd.set_requires_grad(true);
        wd.set_requires_grad(true);
        Tensor buffer = moe_permute(xd, map);
        Tensor out = moe_unpermute(yd, map, wd);
        Tensor loss = add(cast(sum(mul(buffer, probe_buf.to(dev))), wdtype), cast(sum(mul(out, probe.to(dev))), wdtype));
        loss.backward();
        grads = {xd.grad(), yd.grad(), wd.grad()};
        return std::vector<Tensor>{buffer, out};
      };
      std::vector<Tensor> cpu_grads, gpu_grads;
      std::vector<Tensor> want = run(cpu_map, Device::cpu(), cpu_grads);
      std::vector<Tensor> got = run(gpu_map, gpu(), gpu_grads);
      expect_equal(want[0], got[0], "permute (a row copy)");
      const double rtol = rtol_for(dtype);
      expect_close(want[1], got[1], rtol, "unpermute");
      expect_close(cpu_grads[0], gpu_grads[0], rtol, "grad x");
      expect_close(cpu_grads[1], gpu_grads[1], rtol, "grad y");
      expect_close(cpu_grads[2], gpu_grads[2], std::max(rtol, 1e-5), "grad weight");
    }
  }
}

struct LayerCase {
  int64_t top_k;
  bool drop;
  DType dtype;
};

class CudaMoeLayer : public ::testing::TestWithParam<LayerCase> {};

TEST_P(CudaMoeLayer, OutputAndGradientsMatchTheCpu) {
  MT_REQUIRE_GPU();
  const LayerCase p = GetParam();
  MoEConfig c;
  c.d_model = 32;
  c.hidden = 64;
  c.experts = 4;
  c.top_k = p.top_k;
  c.min_capacity = 0;
  c.drop_tokens = p.drop;
  c.z_loss_coef = 0.1;
  Generator init_cpu(7), init_gpu(7);
  MoELayer cpu(c, init_cpu), cuda(c, init_gpu);
  cpu.to(p.dtype);
  cuda.to(gpu(), p.dtype);
  Tensor x = random_input({2, 48, 32}, p.dtype, 31, -1.0, 1.0);
  Tensor probe = random_input({2, 48, 32}, p.dtype, 32);

  auto run = [&](MoELayer& layer, Device dev) {
    Tensor xd = x.to(dev).detach();  // a fresh leaf on each device
    xd.set_requires_grad(true);
    Generator g(3);
    Tensor out = layer.forward(xd, g);
    Tensor loss = add(cast(sum(mul(out, probe.to(dev))), DType::kF32), layer.weighted_loss());
    loss.backward();
    return std::vector<Tensor>{out, xd.grad(), layer.gate().weight().grad(), layer.experts().w1().grad(),
                               layer.experts().b1().grad(), layer.experts().w2().grad(), layer.experts().b2().grad(),
                               layer.aux_loss(), layer.z_loss()};
  };
  std::vector<Tensor> want = run(cpu, Device::cpu()), got = run(cuda, gpu());
  // The routing must agree first: the gate logits differ only by rounding and these inputs have margins.
  EXPECT_EQ(cpu.stats().kept(), cuda.stats().kept());
  EXPECT_EQ(cpu.stats().routed(), cuda.stats().routed());
  if (p.drop) {
    EXPECT_GT(cpu.stats().drop_rate(), 0.0) << "the case should drop some tokens";
  }
  const char* names[] = {"output", "grad x", "grad gate", "grad w1", "grad b1", "grad w2", "grad b2", "aux", "z"};
  const double rtol = p.dtype == DType::kBF16 ? 3e-2 : 1e-4;
  for (size_t i = 0; i < want.size(); ++i) expect_close(want[i], got[i], rtol, names[i]);
}

INSTANTIATE_TEST_SUITE_P(Layers, CudaMoeLayer,
                         ::testing::Values(LayerCase{1, true, DType::kF32}, LayerCase{2, true, DType::kF32},
                                           LayerCase{1, false, DType::kF32}, LayerCase{2, false, DType::kF32},
                                           LayerCase{1, true, DType::kBF16}, LayerCase{2, true, DType::kBF16}),
                         [](const auto& info) {
                           return "Top" + std::to_string(info.param.top_k) +
                                  (info.param.drop ? "Dropping" : "Dropless") + dtype_name(info.param.dtype);
                         });

}  // namespace
}  // namespace mt
