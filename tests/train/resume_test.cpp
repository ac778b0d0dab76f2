// Bit-exact resume: train 20 steps saving at 10, resume a copy of the run from step 10, and
// steps 11-20 must give identical losses (zero tolerance) — dense with dropout, PR-MoE with jitter
// noise, and a student distilled from a teacher until step 15, so the loader position, dropout and
// gating generators and the KD stop are all covered.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "mt/core/device.h"
#include "mt/io/recipe.h"
#include "mt/train/trainer.h"
#include "train_run_util.h"

using namespace mt;
using namespace mt::testing;
namespace fs = std::filesystem;

namespace {

// `teacher`: when set, a teacher is trained first and both runs distill from it with these overrides.
void check_resume(const std::string& name, const std::string& moe, const std::string& device = "cpu",
                  const std::vector<std::string>& teacher_overrides = {}) {
  fs::path data = fresh_dir(name + "_data"), a = fresh_dir(name + "_a"), b = fresh_dir(name + "_b");
  fs::path t = fresh_dir(name + "_teacher");
  write_data(data);
  Communicator world = Communicator::world();
  std::vector<std::string> overrides;
  if (!teacher_overrides.empty()) {
    train(load_recipe_string(recipe_text(data, t, moe, device), "resume-teacher"), world);
    overrides = teacher_overrides;
    overrides.push_back("distill.teacher=" + t.string());
  }
  train(load_recipe_string(recipe_text(data, a, moe, device), "resume-a", overrides), world);
  // A second run folder that holds only the step-10 checkpoint: resume: auto continues from it.
  fs::create_directories(b / "checkpoints");
  fs::copy_file(a / "checkpoints/step_00000010.h5", b / "checkpoints/step_00000010.h5");
  std::ofstream(b / "checkpoints/latest") << "step_00000010.h5\n";
  TrainResult rb = train(load_recipe_string(recipe_text(data, b, moe, device), "resume-b", overrides), world);
  EXPECT_EQ(rb.steps_done, 20);
  std::map<int64_t, double> la = losses(a), lb = losses(b);
  ASSERT_EQ(lb.size(), 10u);
  for (const auto& [step, loss] : lb) EXPECT_EQ(loss, la.at(step)) << name << " step " << step;
  EXPECT_LT(la.at(20), la.at(1)) << "the loss should fall";
  for (const fs::path& d : {data, a, b, t}) fs::remove_all(d);
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

TEST(Resume, StagedDistillationAcrossTheStopIsBitExact) {
  check_resume("distill", "", "cpu", {"model.layers=1", "distill.stop_at=15", "distill.temperature=2"});
}
