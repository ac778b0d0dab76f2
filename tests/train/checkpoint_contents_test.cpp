// Checkpoints whose CRCs are valid but whose contents do not fit or make no sense: a real run's
// checkpoint is re-signed with one change (a tensor dropped, renamed, reshaped, made NaN; a counter
// out of range) and resuming or loading it must fail naming the file and what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <functional>
#include <limits>
#include <string>
#include <vector>

#include "mt/io/checkpoint.h"
#include "mt/io/recipe.h"
#include "mt/train/checkpoint_model.h"
#include "mt/train/exit_status.h"
#include "mt/train/train_checkpoint.h"
#include "mt/train/trainer.h"
#include "train_run_util.h"

using namespace mt;
using namespace mt::testing;
namespace fs = std::filesystem;

namespace {

// What the copy changes: a tensor (return false to drop it; rename by assigning `name`) or a counter.
struct Edit {
  std::function<bool(std::string& name, std::vector<uint8_t>& bytes, TensorInfo& info)> tensor;
  std::function<void(const std::string& key, int64_t& value)> counter;
};

// `in` copied to `out` tensor by tensor and key by key, with `edit` applied; written by CheckpointWriter,
// so every CRC and the root checksum are valid.
void resign(const fs::path& in, const fs::path& out, const Edit& edit) {
  CheckpointReader r(in);
  CheckpointWriter w(out);
  for (const std::string& n : r.names()) {
    TensorInfo info = r.info(n);
    std::vector<uint8_t> bytes(static_cast<size_t>(info.numel()) * dtype_size(info.dtype));
    r.read(n, info.dtype, info.shape, bytes.data());
    std::string name = n;
    if (edit.tensor && !edit.tensor(name, bytes, info)) continue;
    w.write(name, info.dtype, info.shape, bytes.data());
  }
  for (const std::string& k : r.meta_keys()) {
    switch (r.meta_kind(k)) {
      case MetaKind::kInt: {
        int64_t v = r.read_int(k);
        if (edit.counter) edit.counter(k, v);
        w.write_int(k, v);
        break;
      }
      case MetaKind::kDouble: w.write_double(k, r.read_double(k)); break;
      case MetaKind::kString: w.write_string(k, r.read_string(k)); break;
      case MetaKind::kU64s: w.write_u64s(k, r.read_u64s(k)); break;
    }
  }
  w.commit();
}

class CheckpointContents : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new fs::path(fresh_dir("contents"));
    fs::create_directories(*dir_ / "data");
    write_data(*dir_ / "data");
    train(recipe({}), Communicator::world());
  }
  static void TearDownTestSuite() {
    fs::remove_all(*dir_);
    delete dir_;
  }
  static Recipe recipe(std::vector<std::string> overrides, const std::string& run = "run") {
    return load_recipe_string(recipe_text(*dir_ / "data", *dir_ / run), "contents", overrides);
  }
  static fs::path good() { return *dir_ / "run/checkpoints/step_00000010.h5"; }

  // The message of resuming a fresh run from `good()` re-signed with `edit`.
  static std::string resume_error(const Edit& edit, std::vector<std::string> overrides = {}) {
    static int n = 0;
    fs::path bad = *dir_ / ("edited_" + std::to_string(n++) + ".h5");
    resign(good(), bad, edit);
    overrides.push_back("checkpoint.resume=" + bad.string());
    try {
      train(recipe(overrides, "resumed_" + std::to_string(n)), Communicator::world());
    } catch (const Error& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(bad.string()), std::string::npos) << "the message names the file: " << msg;
      return msg;
    }
    ADD_FAILURE() << "resuming an edited checkpoint was accepted";
    return "";
  }
  static inline fs::path* dir_ = nullptr;
};

Edit drop(const std::string& victim) {
  return {[victim](std::string& name, std::vector<uint8_t>&, TensorInfo&) { return name != victim; }, nullptr};
}

Edit set_counter(const std::string& key, int64_t value) {
  return {nullptr, [key, value](const std::string& k, int64_t& v) {
            if (k == key) v = value;
          }};
}

void expect_has(const std::string& msg, const std::string& part) {
  EXPECT_NE(msg.find(part), std::string::npos) << "expected '" << part << "' in: " << msg;
}

TEST_F(CheckpointContents, MissingTensorIsNamed) {
  expect_has(resume_error(drop("model.blocks.1.mlp.fc.weight")), "model.blocks.1.mlp.fc.weight");
}

TEST_F(CheckpointContents, MissingOptimizerStateIsNamed) {
  expect_has(resume_error(drop("optim.state.wte.weight.exp_avg")), "optim.state.wte.weight.exp_avg");
}

TEST_F(CheckpointContents, RenamedTensorIsNamedAsMissingAndExtra) {
  std::string msg = resume_error({[](std::string& name, std::vector<uint8_t>&, TensorInfo&) {
                                    if (name == "model.ln_f.weight") name = "model.ln_final.weight";
                                    return true;
                                  },
                                  nullptr});
  expect_has(msg, "model.ln_final.weight");
}

TEST_F(CheckpointContents, WrongShapeNamesBothShapes) {
  std::string msg = resume_error({[](std::string& name, std::vector<uint8_t>& bytes, TensorInfo& info) {
                                    if (name == "model.ln_f.weight") {
                                      info.shape = {16, 2};
                                      bytes.resize(static_cast<size_t>(info.numel()) * dtype_size(info.dtype));
                                    }
                                    return true;
                                  },
                                  nullptr});
  expect_has(msg, "model.ln_f.weight");
  expect_has(msg, "[16, 2]");
  expect_has(msg, "[32]");
}

TEST_F(CheckpointContents, NonFiniteTensorIsRefusedNamed) {
  std::string msg = resume_error({[](std::string& name, std::vector<uint8_t>& bytes, TensorInfo& info) {
                                    if (name == "model.blocks.0.attn.proj.weight" && info.dtype == DType::kF32) {
                                      float nan = std::numeric_limits<float>::quiet_NaN();
                                      std::memcpy(bytes.data() + 4 * 5, &nan, 4);
                                    }
                                    return true;
                                  },
                                  nullptr});
  expect_has(msg, "model.blocks.0.attn.proj.weight");
  expect_has(msg, "non-finite");
}

TEST_F(CheckpointContents, CountersOutOfRangeAreRefusedNamed) {
  expect_has(resume_error(set_counter("step", -3)), "'step'");
  expect_has(resume_error(set_counter("tokens", -1)), "'tokens'");
  expect_has(resume_error(set_counter("loader_index", 1 << 30)), "'loader_index'");
  expect_has(resume_error(set_counter("loader_epoch", -1)), "'loader_epoch'");
  expect_has(resume_error(Edit{}, {"train.steps=5", "schedule.warmup_steps=1"}), "train.steps");
  expect_has(resume_error(set_counter("step", 7)), "schedule");  // schedule.step stays 10
}

TEST_F(CheckpointContents, MissingMetadataIsNamed) {
  fs::path bad = *dir_ / "no_world.h5";
  {
    CheckpointReader r(good());
    CheckpointWriter w(bad);
    for (const std::string& n : r.names()) {
      TensorInfo info = r.info(n);
      std::vector<uint8_t> bytes(static_cast<size_t>(info.numel()) * dtype_size(info.dtype));
      r.read(n, info.dtype, info.shape, bytes.data());
      w.write(n, info.dtype, info.shape, bytes.data());
    }
    for (const std::string& k : r.meta_keys())
      if (r.meta_kind(k) == MetaKind::kInt && k != "world_size") w.write_int(k, r.read_int(k));
    w.write_u64s("dropout_rng", r.read_u64s("dropout_rng"));
    w.write_string("recipe", r.read_string("recipe"));
    w.commit();
  }
  try {
    train(recipe({"checkpoint.resume=" + bad.string()}, "no_world_run"), Communicator::world());
    ADD_FAILURE() << "accepted";
  } catch (const Error& e) {
    expect_has(e.what(), "world_size");
  }
}

TEST_F(CheckpointContents, SmallerModelByOverridesIsRefusedNamingIgnoredTensors) {
  try {
    load_model((*dir_ / "run").string(), "cpu", {"model.layers=1"});
    ADD_FAILURE() << "a 1-layer model took a 2-layer checkpoint";
  } catch (const Error& e) {
    expect_has(e.what(), "model.blocks.1.");
    expect_has(e.what(), "ignored");
  }
}

TEST_F(CheckpointContents, SavingANonFiniteModelIsRefused) {
  LoadedModel m = load_model((*dir_ / "run").string(), "cpu");
  static_cast<float*>(m.model->named_parameters()[0].tensor.data_ptr())[0] = std::numeric_limits<float>::infinity();
  TrainCounters c;
  c.rank_rngs = {{1, 0}};
  fs::path out = *dir_ / "inf.h5";
  EXPECT_THROW(save_train_checkpoint(out, *m.model, nullptr, nullptr, c, "recipe"), NonFiniteError);
  EXPECT_FALSE(fs::exists(out));
  EXPECT_FALSE(fs::exists(out.string() + ".tmp"));
}

TEST_F(CheckpointContents, MismatchesWithTheStoredRecipeAreListed) {
  EXPECT_TRUE(checkpoint_recipe_mismatches(CheckpointSource(good())).empty());
  fs::path bad = *dir_ / "inspect_me.h5";
  resign(good(), bad, {[](std::string& name, std::vector<uint8_t>& bytes, TensorInfo& info) {
                         if (name == "model.ln_f.weight") {
                           info.shape = {16, 2};
                           bytes.resize(static_cast<size_t>(info.numel()) * dtype_size(info.dtype));
                         }
                         if (name == "model.ln_f.bias") name = "model.ln_f.offset";
                         return true;
                       },
                       nullptr});
  std::vector<std::string> m = checkpoint_recipe_mismatches(CheckpointSource(bad));
  ASSERT_EQ(m.size(), 3u);
  std::string all;
  for (const std::string& line : m) all += line + "\n";
  expect_has(all, "model.ln_f.weight: shape [16, 2] in the file, [32] in the recipe's model");
  expect_has(all, "model.ln_f.bias: missing from the file");
  expect_has(all, "model.ln_f.offset: in the file, not in the recipe's model");
  EXPECT_EQ(checkpoint_recipe_mismatches(CheckpointSource(good()), 1000.0).size(), 1u);  // too large to build: said
}

// The checkpoint part of the hardening fuzz test: 50 seeded damages, each re-signed (valid CRCs) so
// only a check of the contents can catch it, each resumed: every one refused, by a message naming
// the file and the tensor or key that was damaged, and none crashes.
TEST_F(CheckpointContents, FiftyReSignedDamagesAreAllRefusedByName) {
  std::vector<std::string> names;
  {
    CheckpointReader r(good());
    for (const std::string& n : r.names())
      if (n.rfind("schedule.", 0) != 0) names.push_back(n);
  }
  const std::vector<std::string> counters = {"step", "tokens", "loader_epoch", "loader_index", "world_size"};
  uint64_t seed = 20261204;
  auto next = [&](uint64_t bound) {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return (seed >> 33) % bound;
  };
  for (int i = 0; i < 50; ++i) {
    const std::string victim = names[next(names.size())];
    const int kind = static_cast<int>(next(6));
    std::string expect = victim;  // what the message must name
    Edit edit;
    switch (kind) {
      case 0: edit = drop(victim); break;
      case 1:  // renamed
        edit.tensor = [victim](std::string& name, std::vector<uint8_t>&, TensorInfo&) {
          if (name == victim) name += "_renamed";
          return true;
        };
        break;
      case 2:  // flattened: the same bytes under another shape
        edit.tensor = [victim](std::string& name, std::vector<uint8_t>&, TensorInfo& info) {
          if (name == victim) info.shape = info.shape.size() == 1 ? std::vector<int64_t>{1, info.shape[0]}
                                                                  : std::vector<int64_t>{info.numel()};
          return true;
        };
        break;
      case 3: {  // a NaN (or, for an integer tensor, a tensor dropped)
        const size_t at = next(1u << 20);
        edit.tensor = [victim, at](std::string& name, std::vector<uint8_t>& bytes, TensorInfo& info) {
          if (name != victim) return true;
          if (info.dtype != DType::kF32) return false;
          const float nan = std::numeric_limits<float>::quiet_NaN();
          std::memcpy(bytes.data() + 4 * (at % static_cast<size_t>(info.numel())), &nan, 4);
          return true;
        };
        break;
      }
      case 4: {  // a counter out of range
        const std::string key = counters[next(counters.size())];
        edit = set_counter(key, key == "world_size" ? 0 : -1 - static_cast<int64_t>(next(1000)));
        expect = "'" + key + "'";
        break;
      }
      case 5:  // an extra tensor the model does not have
        edit.tensor = [](std::string& name, std::vector<uint8_t>&, TensorInfo&) {
          if (name == "model.ln_f.bias") name = "model.blocks.7.ln_f.bias";
          return true;
        };
        expect = "model.blocks.7.ln_f.bias";
        break;
    }
    if (kind == 1 && victim.rfind("model.", 0) == 0) expect = victim + "_renamed";  // named as the extra one
    SCOPED_TRACE(str_cat("damage ", i, " (kind ", kind, ") of ", victim));
    expect_has(resume_error(edit), expect);
  }
}

}  // namespace
