// Bit-exact resume: train 20 steps saving at 10, resume a copy of the run from step 10, and
// steps 11-20 must give identical losses (zero tolerance) — dense with dropout, and PR-MoE with
// jitter noise, so the loader position, dropout and gating generators are all covered.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>

#include "mt/core/device.h"
#include "mt/data/token_shard.h"
#include "mt/dist/communicator.h"
#include "mt/io/recipe.h"
#include "mt/train/run_metrics.h"
#include "mt/train/trainer.h"

using namespace mt;
namespace fs = std::filesystem;

namespace {

class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { mpi_ = std::make_unique<MpiRuntime>(nullptr, nullptr); }
  void TearDown() override { mpi_.reset(); }

 private:
  std::unique_ptr<MpiRuntime> mpi_;
};
const auto* const kMpi = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

fs::path fresh_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("mt_resume_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

// Token shards of a repetitive pseudo-text so the loss falls.
void write_data(const fs::path& dir) {
  std::vector<int32_t> tokens;
  uint64_t s = 12345;
  for (int i = 0; i < 40000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    tokens.push_back(static_cast<int32_t>((i % 17 == 0) ? (s >> 33) % 200 : (i * 7) % 50));
  }
  write_shard((dir / "train_000000.bin").string(), tokens);
  write_shard((dir / "val_000000.bin").string(), std::vector<int32_t>(tokens.begin(), tokens.begin() + 5000));
}

std::string recipe_text(const fs::path& data, const fs::path& run, const std::string& moe, const std::string& device) {
  std::string dtype = device == "cuda" ? "bf16" : "f32";
  return "model: {layers: 2, d_model: 32, heads: 2, seq_len: 16, vocab_size: 256, dropout: 0.1, dtype: " + dtype + "}\n" + moe +
         "data: {train: \"" + (data / "train_*.bin").string() + "\", val: \"" + (data / "val_*.bin").string() + "\"}\n"
         "optim: {lr: 3.0e-3}\n"
         "schedule: {kind: cosine, warmup_steps: 3}\n"
         "train: {steps: 20, micro_batch: 4, grad_accum: 2, device: " + device + ", run_dir: \"" + run.string() + "\", eval_every: 10, eval_steps: 2}\n"
         "checkpoint: {every: 10, keep: 5}\n"
         "log: {every: 5, progress: plain}\n";
}

std::map<int64_t, double> losses(const fs::path& run) {
  std::map<int64_t, double> out;
  for (const TrainPoint& p : read_run_metrics((run / "metrics.jsonl").string()).train) out[p.step] = p.loss;
  return out;
}

void check_resume(const std::string& name, const std::string& moe, const std::string& device = "cpu") {
  fs::path data = fresh_dir(name + "_data"), a = fresh_dir(name + "_a"), b = fresh_dir(name + "_b");
  write_data(data);
  Communicator world = Communicator::world();
  train(load_recipe_string(recipe_text(data, a, moe, device), "resume-a"), world);
  // A second run folder that holds only the step-10 checkpoint: resume: auto continues from it.
  fs::create_directories(b / "checkpoints");
  fs::copy_file(a / "checkpoints/step_00000010.h5", b / "checkpoints/step_00000010.h5");
  std::ofstream(b / "checkpoints/latest") << "step_00000010.h5\n";
  TrainResult rb = train(load_recipe_string(recipe_text(data, b, moe, device), "resume-b"), world);
  EXPECT_EQ(rb.steps_done, 20);
  std::map<int64_t, double> la = losses(a), lb = losses(b);
  ASSERT_EQ(lb.size(), 10u);
  for (const auto& [step, loss] : lb) EXPECT_EQ(loss, la.at(step)) << name << " step " << step;
  EXPECT_LT(la.at(20), la.at(1)) << "the loss should fall";
  for (const fs::path& d : {data, a, b}) fs::remove_all(d);
}

}  // namespace

TEST(Resume, DenseWithDropoutIsBitExact) { check_resume("dense", ""); }

TEST(Resume, DenseOnCudaIsBitExact) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: the CUDA case runs on GPU machines (scripts/gpu-test.sh)";
  check_resume("dense_cuda", "", "cuda");
}

TEST(Resume, PrMoeWithJitterIsBitExact) {
  check_resume("prmoe", "moe: {experts: [2], every: 2, mlp_type: residual, noisy_gate: jitter, min_capacity: 1}\n");
}
