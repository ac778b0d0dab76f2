// TrainStep (Note [The captured step]): the step's device work reads nothing back on the host (so it can
// be captured), skips a non-finite step on the device, and on a GPU its CUDA-graph replays give the eager
// steps' losses, norms and parameters bit for bit; steps that draw random numbers stay eager.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "mt/core/device.h"
#include "mt/core/host_sync_guard.h"
#include "mt/dist/process_groups.h"
#include "mt/graph/grad_mode.h"
#include "mt/io/recipe.h"
#include "mt/ops/ops.h"
#include "mt/train/expert_sharding.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/train_step.h"
#include "mt/train/training_run.h"
#include "train_run_util.h"

using namespace mt;
using namespace mt::testing;

namespace {

// A model, its optimizer and a TrainStep built as the trainer builds them, from the tests' tiny recipe.
struct StepRig {
  StepRig(const std::string& moe, const std::string& device, std::vector<std::string> overrides)
      : recipe(load_recipe_string(recipe_text("/nonexistent", "/nonexistent", moe, device), "train-step",
                                  std::move(overrides))),
        world(Communicator::world()),
        init(static_cast<uint64_t>(recipe.train.seed)),
        dropout(static_cast<uint64_t>(recipe.train.seed) + 1) {
    resolve_batch(recipe, world.size());
    dev = resolve_device(recipe, world);
    GPTConfig cfg = gpt_config_from_recipe(recipe);
    groups.emplace(world, recipe.dist.ep, cfg.experts_per_block, recipe.dist.node_size);
    model = std::make_unique<GPT>(cfg, init, dropout, &*groups);
    model->to(dev, resolve_dtype(recipe, dev));
    model->train();
    sharding = expert_sharding(*model, &*groups);
    optimizer = std::make_unique<DistributedOptimizer>(recipe, *model, sharding, world);
    step = std::make_unique<TrainStep>(*model, *optimizer, recipe, world.size(), dev, dropout);
  }

  // train.grad_accum micro-batches of a fixed pseudo-text, different for each `seed`.
  std::vector<TokenBatch> batches(int seed) const {
    std::vector<TokenBatch> out;
    const int64_t b = recipe.train.micro_batch, t = recipe.model.seq_len;
    for (int m = 0; m < recipe.train.grad_accum; ++m) {
      std::vector<int32_t> rows(b * (t + 1));
      for (size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<int32_t>((i * 7 + 13 * m + 31 * seed) % 200);
      out.push_back(to_token_batch(rows, b, t, dev));
    }
    return out;
  }

  std::vector<std::vector<float>> parameters() const {
    std::vector<std::vector<float>> out;
    for (const NamedParameter& p : model->named_parameters()) out.push_back(p.tensor.to_vector<float>());
    return out;
  }

  Recipe recipe;
  Communicator world;
  Generator init, dropout;
  Device dev;
  std::optional<ProcessGroups> groups;
  std::unique_ptr<GPT> model;
  ExpertSharding sharding;
  std::unique_ptr<DistributedOptimizer> optimizer;
  std::unique_ptr<TrainStep> step;
};

const char* kMoe = "moe: {experts: [4], every: 2, random_token_selection: false, min_capacity: 1}\n";

}  // namespace

TEST(TrainStep, QueuedWorkReadsNothingOnTheHost) {
  for (const std::string moe : {"", kMoe}) {
    StepRig rig(moe, "cpu", {"model.dropout=0"});
    rig.step->run(rig.batches(0), nullptr, 1e-3);  // the optimizer state exists, control holds an lr
    const std::vector<std::vector<float>> before = rig.parameters();
    const std::vector<TokenBatch> batches = rig.batches(1);
    {
      HostSyncForbidden no_sync("the test's step");
      rig.step->queue(batches, nullptr);
    }
    EXPECT_NE(rig.parameters(), before) << "the queued step updated nothing (moe: '" << moe << "')";
  }
}

TEST(TrainStep, DroplessRoutingIsAHostReadNamedInTheError) {
  StepRig rig("moe: {experts: [4], every: 2, drop_tokens: false}\n", "cpu", {"model.dropout=0"});
  rig.step->run(rig.batches(0), nullptr, 1e-3);
  const std::vector<TokenBatch> batches = rig.batches(1);
  HostSyncForbidden no_sync("the test's step");
  try {
    rig.step->queue(batches, nullptr);
    FAIL() << "dropless routing reads its capacity on the host";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("inside the test's step"), std::string::npos) << e.what();
  }
}

TEST(TrainStep, NonFiniteLossSkipsTheUpdateOnTheDevice) {
  StepRig rig("", "cpu", {"model.dropout=0"});
  const StepSums first = rig.step->run(rig.batches(0), nullptr, 1e-3);
  EXPECT_TRUE(first.applied);
  EXPECT_TRUE(std::isfinite(first.loss) && std::isfinite(first.grad_norm));
  EXPECT_EQ(rig.optimizer->local().step_count(), 1);
  {
    NoGradGuard no_grad;
    fill_(rig.model->named_parameters()[0].tensor, std::nan(""));  // the token embedding
  }
  const std::vector<std::vector<float>> before = rig.parameters();
  const StepSums bad = rig.step->run(rig.batches(1), nullptr, 1e-3);
  EXPECT_FALSE(bad.applied);
  EXPECT_FALSE(std::isfinite(bad.loss));
  EXPECT_EQ(rig.optimizer->local().step_count(), 1) << "a skipped step is not counted";
  const std::vector<std::vector<float>> after = rig.parameters();
  for (size_t i = 1; i < after.size(); ++i) EXPECT_EQ(after[i], before[i]) << "parameter " << i << " moved";
}

// Six steps eagerly and as graph replays (captured at the third): equal losses, norms and parameters, bit
// for bit; clipping is on, and the learning rate moves every step.
void expect_replays_equal_eager(const std::string& moe, const std::vector<std::string>& overrides) {
  auto with = [&](std::vector<std::string> more) {
    more.insert(more.end(), overrides.begin(), overrides.end());
    return more;
  };
  StepRig eager(moe, "cuda", with({"optim.grad_clip=0.05", "train.cuda_graph=false"}));
  StepRig graph(moe, "cuda", with({"optim.grad_clip=0.05", "train.cuda_graph=true"}));
  const std::string what = "moe '" + moe + "'" + (overrides.empty() ? "" : " " + overrides[0]);
  for (int s = 0; s < 6; ++s) {
    const double lr = 1e-3 * (s + 1);
    const StepSums a = eager.step->run(eager.batches(s), nullptr, lr);
    const StepSums b = graph.step->run(graph.batches(s), nullptr, lr);
    EXPECT_EQ(a.loss, b.loss) << "step " << s << " " << what;
    EXPECT_EQ(a.aux, b.aux) << "step " << s << " " << what;
    EXPECT_EQ(a.grad_norm, b.grad_norm) << "step " << s << " " << what;
    EXPECT_TRUE(b.applied) << what;
    EXPECT_GT(a.grad_norm, 0.05) << "clipping at 0.05 would not act";
  }
  EXPECT_TRUE(graph.step->replaying()) << what << ": " << graph.step->eager_reason();
  EXPECT_FALSE(eager.step->replaying());
  EXPECT_EQ(graph.dropout.state().offset, eager.dropout.state().offset) << what;
  EXPECT_EQ(graph.parameters(), eager.parameters()) << what;
}

TEST(TrainStep, CudaGraphReplaysEqualEagerSteps) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: runs on GPU machines (scripts/gpu-test.sh)";
  expect_replays_equal_eager("", {"model.dropout=0"});
  expect_replays_equal_eager(kMoe, {"model.dropout=0"});
}

TEST(TrainStep, CudaGraphReplaysDrawTheEagerStepsRandomNumbers) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: runs on GPU machines (scripts/gpu-test.sh)";
  expect_replays_equal_eager("", {"model.dropout=0.1"});  // dropout
  // Random token selection (the top-1 default) and jitter noise; top-2 with its sampled second expert.
  expect_replays_equal_eager("moe: {experts: [4], every: 2, noisy_gate: jitter, min_capacity: 1}\n", {"model.dropout=0.1"});
  expect_replays_equal_eager("moe: {experts: [4], every: 2, top_k: 2, min_capacity: 1}\n", {"model.dropout=0"});
}

TEST(TrainStep, DroplessMoeStaysEagerAndSaysWhy) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: runs on GPU machines (scripts/gpu-test.sh)";
  StepRig rig("moe: {experts: [4], every: 2, drop_tokens: false}\n", "cuda", {"model.dropout=0", "train.cuda_graph=true"});
  for (int s = 0; s < 4; ++s) EXPECT_TRUE(rig.step->run(rig.batches(s), nullptr, 1e-3).applied);
  EXPECT_FALSE(rig.step->replaying());
  EXPECT_NE(rig.step->eager_reason().find("the capture failed"), std::string::npos) << rig.step->eager_reason();
}
