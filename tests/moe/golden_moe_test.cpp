// MoELayer against a PyTorch re-implementation of DeepSpeed's gating and MoE layer, from
// tests/data/golden_moe.h5 (written by scripts/make_golden_moe.py on a machine with torch):
// routing table, output, aux / z losses and the gradients of every parameter and of the input;
// and route() against DeepSpeed's gating with its defaults (RTS, second-expert sampling, k = 3,
// sequence-major) fed the file's draws. Skipped only when the file or a case is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "mt/graph/grad_mode.h"
#include "mt/nn/moe_layer.h"
#include "../data/golden_file.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

const std::string kGoldenPath = std::string(MT_TEST_DATA_DIR) + "/golden_moe.h5";
constexpr double kTolerance = 1e-5;

using Dataset = GoldenDataset;

void expect_close(const Tensor& got, const Dataset& want, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what << ": no value";
  EXPECT_EQ(got.shape(), want.shape) << what;
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.values.size()) << what;
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(g[i], want.values[i], kTolerance * std::max(1.0, std::fabs(want.values[i]))) << what << " element " << i;
}

std::vector<int64_t> as_ints(const Dataset& d) {
  std::vector<int64_t> out;
  for (double v : d.values) out.push_back(static_cast<int64_t>(v));
  return out;
}

class GoldenMoE : public ::testing::TestWithParam<std::string> {};

}  // namespace

TEST_P(GoldenMoE, MatchesTheDeepSpeedReference) {
  if (!std::filesystem::exists(kGoldenPath)) GTEST_SKIP() << kGoldenPath << " is absent (scripts/make_golden_moe.py)";
  GoldenFile f(kGoldenPath);
  const std::string g = GetParam() + "/";
  MoEConfig c;
  c.experts = static_cast<int64_t>(f.scalar(g + "config/experts"));
  c.top_k = static_cast<int64_t>(f.scalar(g + "config/top_k"));
  c.d_model = static_cast<int64_t>(f.scalar(g + "config/d_model"));
  c.hidden = static_cast<int64_t>(f.scalar(g + "config/hidden"));
  c.capacity_factor = c.eval_capacity_factor = f.scalar(g + "config/capacity_factor");
  c.min_capacity = static_cast<int64_t>(f.scalar(g + "config/min_capacity"));
  c.drop_tokens = f.scalar(g + "config/drop_tokens") != 0;
  c.mlp_type = f.scalar(g + "config/residual") != 0 ? MlpType::kResidual : MlpType::kStandard;
  const double aux_coef = f.scalar(g + "config/aux_coef");
  // This golden file is DeepSpeed's deterministic gating over batch-major tokens: RTS and
  // second-expert sampling off, and x fed as (B * T, d) so the layer routes in the given order.
  c.random_token_selection = false;
  c.second_expert_sampling = false;

  Generator gen(0);
  MoELayer layer(c, gen);
  StateDict state;
  std::vector<NamedParameter> params = layer.named_parameters();
  for (const NamedParameter& p : params) state[p.name] = f.tensor(g + "params/" + p.name);
  layer.load_state_dict(state);

  Tensor x = f.tensor(g + "x");
  x.set_requires_grad(true);
  Tensor out = layer.forward(x.reshape({-1, c.d_model}), gen).reshape(x.shape());
  Tensor loss = add(sum(mul(out, f.tensor(g + "dout"))), mul(layer.aux_loss(), aux_coef));
  loss.backward();

  expect_close(out, f.read(g + "out"), "out");
  EXPECT_NEAR(layer.aux_loss().item(), f.scalar(g + "aux_loss"), kTolerance);
  EXPECT_NEAR(layer.z_loss().item(), f.scalar(g + "z_loss"), kTolerance * std::max(1.0, f.scalar(g + "z_loss")));
  EXPECT_EQ(layer.stats().capacity, static_cast<int64_t>(f.scalar(g + "capacity")));
  {
    NoGradGuard ng;
    RoutingResult r = layer.gate().forward(x.reshape({-1, c.d_model}), gen);
    EXPECT_EQ(r.table.expert.to_vector<int64_t>(), as_ints(f.read(g + "expert")));
    EXPECT_EQ(r.table.slot.to_vector<int64_t>(), as_ints(f.read(g + "slot")));
  }
  for (const NamedParameter& p : params) expect_close(p.tensor.grad(), f.read(g + "grads/" + p.name), "grad of " + p.name);
  expect_close(x.grad(), f.read(g + "grads/x"), "grad of x");
}

class GoldenRouting : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenRouting, MatchesDeepSpeedsDefaultGating) {
  if (!std::filesystem::exists(kGoldenPath)) GTEST_SKIP() << kGoldenPath << " is absent (scripts/make_golden_moe.py)";
  GoldenFile f(kGoldenPath);
  const std::string g = GetParam() + "/";
  if (!f.has(GetParam())) GTEST_SKIP() << GetParam() << " is not in " << kGoldenPath << ": rerun scripts/make_golden_moe.py";
  RoutingOptions o;  // DeepSpeed's defaults: RTS (top-1) and second-expert sampling (top-2) on
  o.top_k = static_cast<int64_t>(f.scalar(g + "config/top_k"));
  o.capacity_factor = f.scalar(g + "config/capacity_factor");
  o.min_capacity = static_cast<int64_t>(f.scalar(g + "config/min_capacity"));
  o.sequence_length = static_cast<int64_t>(f.scalar(g + "config/sequence_length"));
  RoutingNoise noise;  // (S, E) in the sequence-major order of the routing
  noise.gumbel = f.tensor(g + "gumbel").to(DType::kF64);
  noise.uniform = f.tensor(g + "uniform");
  o.noise = &noise;

  Tensor logits = f.tensor(g + "logits").to(DType::kF64);  // (S, E) batch-major, f32 values
  logits.set_requires_grad(true);
  Generator gen(0);
  RoutingResult r = route(logits, o, gen);
  EXPECT_EQ(gen.state().offset, 0u) << "every draw came from the file";
  EXPECT_EQ(r.table.capacity, static_cast<int64_t>(f.scalar(g + "capacity")));
  EXPECT_EQ(r.table.expert.to_vector<int64_t>(), as_ints(f.read(g + "expert")));
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), as_ints(f.read(g + "slot")));
  expect_close(r.table.weight, f.read(g + "weight"), "weight");
  EXPECT_NEAR(r.aux_loss.item(), f.scalar(g + "aux_loss"), kTolerance);
  EXPECT_NEAR(r.z_loss.item(), f.scalar(g + "z_loss"), kTolerance * std::max(1.0, f.scalar(g + "z_loss")));
  Tensor loss = add(add(sum(mul(r.table.weight, f.tensor(g + "dweight").to(DType::kF64))),
                        mul(r.aux_loss, f.scalar(g + "config/aux_coef"))),
                    mul(r.z_loss, f.scalar(g + "config/z_coef")));
  loss.backward();
  expect_close(logits.grad(), f.read(g + "grads/logits"), "grad of logits (weights, aux and z losses)");
}

INSTANTIATE_TEST_SUITE_P(Cases, GoldenRouting, ::testing::Values("rts_top1", "rts_top1_eval", "sampled_top2", "topk3"),
                         [](const auto& info) { return info.param; });

INSTANTIATE_TEST_SUITE_P(Cases, GoldenMoE, ::testing::Values("top1", "top1_dropless", "top2", "residual"),
                         [](const auto& info) { return info.param; });
