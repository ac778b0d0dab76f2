// AdamW, SGD, clip_grad_norm and LR schedules against PyTorch's values in tests/data/golden_optim.h5
// (written by scripts/make_golden_optim.py on a machine with torch). Skipped only when the file is absent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>

#include "../data/golden_file.h"
#include "mt/ops/ops.h"
#include "mt/optim/adamw.h"
#include "mt/optim/clip_grad.h"
#include "mt/optim/lr_schedule.h"
#include "mt/optim/sgd.h"

using namespace mt;

namespace {

const std::string kGoldenPath = std::string(MT_TEST_DATA_DIR) + "/golden_optim.h5";
constexpr int kParams = 3;
constexpr int kSteps = 5;
const bool kDecays[kParams] = {true, false, true};

using Dataset = GoldenDataset;

void expect_close(const Tensor& got, const std::vector<double>& want, const std::string& what) {
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i)
    EXPECT_NEAR(g[i], want[i], 1e-6 * std::max(1.0, std::fabs(want[i]))) << what << " element " << i;
}

// "p<k>", built with += (GCC 12 warns falsely on "literal" + std::string here).
std::string param_name(int k) {
  std::string n = "p";
  n += std::to_string(k);
  return n;
}

#define SKIP_WITHOUT_GOLDEN()                                                                          \
  if (!std::filesystem::exists(kGoldenPath))                                                           \
  GTEST_SKIP() << kGoldenPath << " is absent: run scripts/make_golden_optim.py where torch is installed"

std::vector<Tensor> initial_params(const GoldenFile& f) {
  std::vector<Tensor> ps;
  for (int k = 0; k < kParams; ++k) {
    Tensor p = f.tensor("params/init/p" + std::to_string(k));
    p.set_requires_grad(true);
    ps.push_back(p);
  }
  return ps;
}

std::vector<ParamGroup> golden_groups(const std::vector<Tensor>& ps) {
  ParamGroup decay{{}, WeightDecay::kApply}, no_decay{{}, WeightDecay::kSkip};
  for (int k = 0; k < kParams; ++k)
    (kDecays[k] ? decay : no_decay).params.push_back({param_name(k), ps[k], ParamKind::kWeight});
  return {decay, no_decay};
}

// Runs the golden gradient sequence through `opt`, checking parameters after every step.
void check_steps(const GoldenFile& f, Optimizer& opt, const std::vector<Tensor>& ps, const std::string& name,
                 const std::vector<double>& lrs) {
  for (int s = 1; s <= kSteps; ++s) {
    opt.set_lr(lrs[s - 1]);
    for (int k = 0; k < kParams; ++k)
      ps[k].set_grad(f.tensor("grads/step" + std::to_string(s) + "/" + param_name(k)));
    opt.step();
    for (int k = 0; k < kParams; ++k) {
      std::string key = name + "/step" + std::to_string(s) + "/" + param_name(k);
      expect_close(ps[k], f.read(key).values, key);
    }
  }
}

}  // namespace

TEST(GoldenOptim, AdamWMatchesPyTorch) {
  SKIP_WITHOUT_GOLDEN();
  GoldenFile f(kGoldenPath);
  std::vector<Tensor> ps = initial_params(f);
  AdamW opt(golden_groups(ps), {.lr = f.read("adamw/lr").values[0],
                                .beta1 = f.scalar("adamw/beta1"),
                                .beta2 = f.scalar("adamw/beta2"),
                                .eps = f.scalar("adamw/eps"),
                                .weight_decay = f.scalar("adamw/weight_decay")});
  check_steps(f, opt, ps, "adamw", f.read("adamw/lr").values);
  StateDict state = opt.state_dict();
  for (int k = 0; k < kParams; ++k)
    for (const char* slot : {"exp_avg", "exp_avg_sq"}) {
      std::string p = param_name(k);
      expect_close(state.at("state." + p + "." + slot), f.read("adamw/final/" + p + "/" + slot).values, slot);
    }
}

TEST(GoldenOptim, SgdMomentumMatchesPyTorch) {
  SKIP_WITHOUT_GOLDEN();
  GoldenFile f(kGoldenPath);
  std::vector<Tensor> ps = initial_params(f);
  double lr = f.scalar("sgd/lr");
  Sgd opt(golden_groups(ps), {.lr = lr, .momentum = f.scalar("sgd/momentum"), .weight_decay = f.scalar("sgd/weight_decay")});
  check_steps(f, opt, ps, "sgd", std::vector<double>(kSteps, lr));
  StateDict state = opt.state_dict();
  for (int k = 0; k < kParams; ++k) {
    std::string p = param_name(k);
    expect_close(state.at("state." + p + ".momentum_buffer"), f.read("sgd/final/" + p + "/momentum_buffer").values,
                 "momentum_buffer");
  }
}

TEST(GoldenOptim, ClipGradNormMatchesPyTorch) {
  SKIP_WITHOUT_GOLDEN();
  GoldenFile f(kGoldenPath);
  for (const std::string name : {"clip", "clip_noop"}) {
    std::vector<Tensor> ps;
    for (int k = 0; k < 2; ++k) {
      Tensor g = f.tensor(name + "/grad_in/g" + std::to_string(k));
      Tensor p = zeros(g.shape());
      p.set_requires_grad(true);
      p.set_grad(g);
      ps.push_back(p);
    }
    double total = clip_grad_norm(ps, f.scalar(name + "/max_norm"));
    double want = f.scalar(name + "/total_norm");
    EXPECT_NEAR(total, want, 1e-6 * std::max(1.0, want)) << name;
    for (int k = 0; k < 2; ++k)
      expect_close(ps[k].grad(), f.read(name + "/grad_out/g" + std::to_string(k)).values, name);
  }
}

TEST(GoldenOptim, SchedulesMatchPyTorchLambdaLR) {
  SKIP_WITHOUT_GOLDEN();
  GoldenFile f(kGoldenPath);
  for (auto [name, decay] : {std::pair{"cosine", LrDecay::kCosine}, std::pair{"linear", LrDecay::kLinear}}) {
    std::string g = std::string("schedule/") + name;
    LrSchedule s({.lr = f.scalar(g + "/lr"),
                  .warmup_steps = static_cast<int64_t>(f.scalar(g + "/warmup_steps")),
                  .total_steps = static_cast<int64_t>(f.scalar(g + "/total_steps")),
                  .decay = decay,
                  .min_lr_ratio = f.scalar(g + "/min_lr_ratio")});
    std::vector<double> steps = f.read(g + "/steps").values, lrs = f.read(g + "/lrs").values;
    for (size_t i = 0; i < steps.size(); ++i)
      EXPECT_NEAR(s.lr_at(static_cast<int64_t>(steps[i])), lrs[i], 1e-12) << name << " step " << steps[i];
  }
}
