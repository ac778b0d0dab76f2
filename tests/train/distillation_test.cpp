// Staged knowledge distillation: when KD stops (fraction or step), the teacher's checks (missing,
// another vocabulary, a shorter context), KD logged only before the stop, and a student trained with
// KD ending closer to its teacher than the same student trained without.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "mt/graph/grad_mode.h"
#include "mt/io/recipe.h"
#include "mt/ops/ops.h"
#include "mt/train/checkpoint_model.h"
#include "mt/train/distillation.h"
#include "mt/train/trainer.h"
#include "train_run_util.h"

using namespace mt;
using namespace mt::testing;
namespace fs = std::filesystem;

namespace {

Recipe recipe(const fs::path& data, const fs::path& run, std::vector<std::string> overrides = {}) {
  return load_recipe_string(recipe_text(data, run), run.filename().string(), overrides);
}

// Steps whose metrics.jsonl training line carries a "kd" value.
std::set<int64_t> steps_with_kd(const fs::path& run) {
  std::ifstream in(run / "metrics.jsonl");
  std::set<int64_t> out;
  std::regex step(R"re("step": ?([0-9]+))re");
  for (std::string line; std::getline(in, line);) {
    std::smatch m;
    if (line.find("\"kd\"") != std::string::npos && std::regex_search(line, m, step)) out.insert(std::stoll(m[1]));
  }
  return out;
}

// KL(teacher || student) of two trained runs on the first validation tokens.
double kl_to_teacher(const fs::path& teacher_run, const fs::path& student_run) {
  NoGradGuard ng;
  LoadedModel t = load_model(teacher_run.string(), "cpu"), s = load_model(student_run.string(), "cpu");
  std::vector<int64_t> ids;
  for (int i = 0; i < 64; ++i) ids.push_back((i * 7) % 50);
  Tensor tokens = Tensor::from_vector<int64_t>(ids, {4, 16});
  Tensor lt = t.model->forward(tokens), ls = s.model->forward(tokens);
  return distillation_loss(ls.view({-1, ls.size(-1)}), lt.view({-1, lt.size(-1)})).item();
}

void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    for (const std::string& p : parts) EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

}  // namespace

TEST(Distillation, StopStepIsAFractionOfTheRunOrAStep) {
  auto stop = [](std::vector<std::string> o) {
    o.push_back("distill.teacher=somewhere");
    return distillation_stop_step(load_recipe_string(recipe_text("d", "r"), "t", o));
  };
  EXPECT_EQ(stop({"distill.stop_at=0.7"}), 14);
  EXPECT_EQ(stop({"distill.stop_at=0.72"}), 14);  // 14.4 rounds to 14
  EXPECT_EQ(stop({"distill.stop_at=0"}), 20);     // the whole run
  EXPECT_EQ(stop({"distill.stop_at=1"}), 20);
  EXPECT_EQ(stop({"distill.stop_at=5"}), 5);
  EXPECT_EQ(stop({"distill.stop_at=20"}), 20);
  EXPECT_EQ(distillation_stop_step(load_recipe_string(recipe_text("d", "r"), "t", {"distill.stop_at=0.5"})), 20)
      << "no teacher: no KD, the stop is the end";
}

TEST(Distillation, TeacherErrorsNameTheTeacherAndWhatDiffers) {
  fs::path data = fresh_dir("kd_err_data"), dir = fresh_dir("kd_err");
  write_data(data);
  Communicator world = Communicator::world();
  fs::path missing = dir / "no-such-run";
  expect_error([&] { train(recipe(data, dir / "s1", {"distill.teacher=" + missing.string()}), world); },
               {"distill.teacher", missing.string()});
  train(recipe(data, dir / "wide", {"model.vocab_size=300", "train.steps=4"}), world);
  expect_error([&] { train(recipe(data, dir / "s2", {"distill.teacher=" + (dir / "wide").string()}), world); },
               {"distill.teacher", "300", "256", "model.vocab_size"});
  train(recipe(data, dir / "short", {"model.seq_len=8", "train.steps=4"}), world);
  expect_error([&] { train(recipe(data, dir / "s3", {"distill.teacher=" + (dir / "short").string()}), world); },
               {"distill.teacher", "8 tokens", "model.seq_len = 16"});
  for (const fs::path& d : {data, dir}) fs::remove_all(d);
}

TEST(Distillation, KdStopsAtStopAtAndPullsTheStudentTowardTheTeacher) {
  fs::path data = fresh_dir("kd_data"), dir = fresh_dir("kd");
  write_data(data);
  Communicator world = Communicator::world();
  fs::path teacher = dir / "teacher";
  train(recipe(data, teacher), world);
  const std::string from = "distill.teacher=" + teacher.string();

  train(recipe(data, dir / "staged", {"model.layers=1", from, "distill.stop_at=0.5"}), world);
  std::set<int64_t> expected;
  for (int64_t s = 1; s <= 10; ++s) expected.insert(s);
  EXPECT_EQ(steps_with_kd(dir / "staged"), expected) << "KD on steps 1-10 of 20, off after";

  // Another seed than the teacher's: otherwise both students start from the teacher's own first block
  // and embedding and follow its trajectory closely without any KD.
  train(recipe(data, dir / "kd", {"model.layers=1", "train.seed=99", from, "distill.kd_coef=10"}), world);
  train(recipe(data, dir / "plain", {"model.layers=1", "train.seed=99"}), world);
  EXPECT_TRUE(steps_with_kd(dir / "plain").empty());
  double with_kd = kl_to_teacher(teacher, dir / "kd"), without = kl_to_teacher(teacher, dir / "plain");
  EXPECT_LT(with_kd, 0.75 * without) << "KL to the teacher: " << with_kd << " with KD, " << without << " without";
  for (const fs::path& d : {data, dir}) fs::remove_all(d);
}
