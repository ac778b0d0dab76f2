// Tests of the recipe loader: base chains, overrides, strict errors (file:line + dotted key),
// batch derivation, the to_yaml round trip, and that every shipped recipes/*.yaml validates.
#include "mt/io/recipe.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "mt/core/error.h"
#include "mt/io/recipe_did_you_mean.h"
#include "mt/io/recipe_schema.h"

namespace mt {
namespace {

const std::string kData = std::string(MT_TEST_DATA_DIR) + "/recipes/";

// The smallest valid recipe text: the required keys and two of the three batch sizes.
const std::string kMinimal =
    "data: {train: shards/*.bin}\n"
    "train: {steps: 10, micro_batch: 2, grad_accum: 3, run_dir: runs/t}\n";

// Runs `f`, expects an mt::Error whose message contains every one of `parts`.
void expect_error(const std::function<void()>& f, const std::vector<std::string>& parts) {
  try {
    f();
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    return;
  }
  ADD_FAILURE() << "no mt::Error thrown";
}

TEST(Recipe, DefaultsFillUnsetKeys) {
  Recipe r = load_recipe_string(kMinimal, "t.yaml");
  EXPECT_EQ(r.model.layers, 12);
  EXPECT_EQ(r.model.vocab_size, 50257);
  EXPECT_EQ(r.model.dtype, ModelSection::DType::kAuto);
  EXPECT_TRUE(r.moe.dense());
  EXPECT_DOUBLE_EQ(r.optim.lr, 3e-4);
  EXPECT_EQ(r.schedule.kind, ScheduleSection::Kind::kCosine);
  EXPECT_EQ(r.train.sample_prompt, "\n");
  EXPECT_EQ(r.checkpoint.resume, "auto");
  EXPECT_EQ(r.data.train, (std::vector<DataSource>{{"shards/*.bin", 1.0}}));
  EXPECT_EQ(r.sources, std::vector<std::string>{"t.yaml"});
}

TEST(Recipe, BaseChainMergesAndChildWins) {
  Recipe r = load_recipe(kData + "sub/base_grandchild.yaml");
  EXPECT_EQ(r.model.layers, 6);                                     // root
  EXPECT_EQ(r.model.d_model, 512);                                  // child over root
  EXPECT_EQ(r.model.heads, 8);                                      // root, same section as a child key
  EXPECT_EQ(r.moe.experts_per_layer, (std::vector<int>{8, 8, 8}));  // a list replaces, never merges
  EXPECT_DOUBLE_EQ(r.optim.lr, 5e-4);                               // grandchild over root
  EXPECT_DOUBLE_EQ(r.optim.beta2, 0.99);                            // root
  EXPECT_EQ(r.train.run_dir, "runs/child");
  ASSERT_EQ(r.sources.size(), 3u);
  EXPECT_NE(r.sources[0].find("base_root.yaml"), std::string::npos);
  EXPECT_NE(r.sources[1].find("base_child.yaml"), std::string::npos);
  EXPECT_EQ(r.sources[2], kData + "sub/base_grandchild.yaml");
}

TEST(Recipe, OverridesApplyLastAndParseYamlValues) {
  Recipe r = load_recipe(kData + "sub/base_grandchild.yaml",
                         {"optim.lr=2e-3", "moe.experts=[4,8,16]", "model.dtype=bf16", "train.run_dir=runs/cli",
                          "moe.drop_tokens=false", "data.tokenizer="});
  EXPECT_DOUBLE_EQ(r.optim.lr, 2e-3);
  EXPECT_EQ(r.moe.experts_per_layer, (std::vector<int>{4, 8, 16}));
  EXPECT_EQ(r.model.dtype, ModelSection::DType::kBf16);
  EXPECT_EQ(r.train.run_dir, "runs/cli");
  EXPECT_FALSE(r.moe.drop_tokens);
  EXPECT_EQ(r.data.tokenizer, "");
  // A count replaces a list; the last of two overrides of one key wins.
  Recipe s = load_recipe(kData + "sub/base_grandchild.yaml", {"moe.experts=2", "moe.experts=16"});
  EXPECT_EQ(s.moe.experts, 16);
  EXPECT_TRUE(s.moe.experts_per_layer.empty());
  EXPECT_EQ(s.moe.experts_at(2), 16);
}

TEST(Recipe, OverrideOfUnknownKeySuggestsTheClosest) {
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"optim.lrr=1e-3"}); },
               {"command line", "unknown key 'optim.lrr'", "(did you mean 'optim.lr'?)", "valid keys in optim:"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"optm.lr=1e-3"}); },
               {"command line", "unknown key 'optm.lr'", "(did you mean 'optim.lr'?)", "valid sections:"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"optim.lr"}); }, {"command line", "section.key=value"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"model.layers=ten"}); },
               {"command line", "model.layers", "expected an integer >= 1", "'ten'"});
}

TEST(Recipe, TextAfterAValueIsRefusedNotDropped) {
  // yaml-cpp alone would read `""-s1` as "" and `[4,8]x` as [4, 8] (Note [One YAML document]).
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"train.run_dir=\"\"-s1"}); },
               {"command line", "train.run_dir", "text follows the value at column 17"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"moe.experts=[4,8]x"}); },
               {"command line", "moe.experts", "text follows the value"});
  expect_error([] { load_recipe_string(kMinimal + "---\nmodel: {layers: 2}\n", "t.yaml"); },
               {"t.yaml:4", "a second YAML document"});
  EXPECT_EQ(load_recipe_string(kMinimal, "t.yaml", {"train.run_dir=\"runs/a b\""}).train.run_dir, "runs/a b");
}

TEST(Recipe, UnknownKeyNamesFileLineAndSuggests) {
  expect_error([] { load_recipe(kData + "unknown_key.yaml"); },
               {"unknown_key.yaml:4", "unknown key 'model.layrs'", "did you mean 'model.layers'?", "valid keys in model:",
                "d_model"});
  expect_error([] { load_recipe(kData + "unknown_section.yaml"); },
               {"unknown_section.yaml:3", "unknown section 'optm'", "did you mean 'optim'?"});
}

TEST(Recipe, WrongTypeNamesFileLineAndKey) {
  expect_error([] { load_recipe(kData + "wrong_type.yaml"); },
               {"wrong_type.yaml:5", "model.layers", "expected an integer >= 1", "got 'twelve'"});
  // A quoted number is a string, not an integer.
  expect_error([] { load_recipe_string(kMinimal + "model: {layers: \"12\"}\n", "t.yaml"); },
               {"t.yaml:3", "model.layers", "quoted string '12'"});
  expect_error([] { load_recipe_string(kMinimal + "model:\n  tie_embeddings: 1\n", "t.yaml"); },
               {"t.yaml:4", "model.tie_embeddings", "true or false"});
  expect_error([] { load_recipe_string(kMinimal + "optim:\n  lr: [1]\n", "t.yaml"); },
               {"t.yaml:4", "optim.lr", "expected a number", "got a list"});
  expect_error([] { load_recipe_string(kMinimal + "model: 3\n", "t.yaml"); },
               {"t.yaml:3", "model: expected a mapping of keys"});
}

TEST(Recipe, BadValueNamesWhatIsValid) {
  expect_error([] { load_recipe(kData + "bad_enum.yaml"); },
               {"bad_enum.yaml:5", "model.dtype", "'fp16' is not valid", "expected one of auto, f32, bf16"});
  expect_error([] { load_recipe_string(kMinimal + "model:\n  dropout: 1.5\n", "t.yaml"); },
               {"t.yaml:4", "model.dropout", "out of range", "in [0, 1)"});
  expect_error([] { load_recipe_string(kMinimal + "optim: {lr: 0}\n", "t.yaml"); },
               {"t.yaml:3", "optim.lr", "> 0"});
  expect_error([] { load_recipe_string(kMinimal + "optim: {lr: .nan}\n", "t.yaml"); },
               {"t.yaml:3", "optim.lr", "expected a number > 0", "got '.nan'"});
  expect_error([] { load_recipe_string(kMinimal + "model: {layers: 4294967297}\n", "t.yaml"); },
               {"t.yaml:3", "model.layers", "4294967297 is too large"});
  expect_error([] { load_recipe_string(kMinimal + "moe: {experts: [4, 0]}\n", "t.yaml"); },
               {"t.yaml:3", "moe.experts[1]", "0 is out of range", "in [1, 2147483647]"});
}

TEST(Recipe, DuplicateKeyIsRefused) {
  expect_error([] { load_recipe(kData + "duplicate_key.yaml"); },
               {"duplicate_key.yaml:6", "duplicate key 'optim.lr'", "first set at line 4"});
  expect_error([] { load_recipe_string(kMinimal + "train: {steps: 3}\n", "t.yaml"); },
               {"t.yaml:3", "duplicate key 'train'", "line 2"});
}

TEST(Recipe, BaseCycleAndMissingBaseAreErrors) {
  expect_error([] { load_recipe(kData + "cycle_a.yaml"); }, {"cycle_b.yaml:2", "base: cycle: " + kData + "cycle_a.yaml -> " + kData + "cycle_b.yaml -> " + kData + "cycle_a.yaml"});
  expect_error([] { load_recipe(kData + "missing_base.yaml"); },
               {"missing_base.yaml:3", "base: cannot open", "no_such_recipe.yaml"});
  expect_error([] { load_recipe(kData + "no_such_file.yaml"); }, {"cannot open recipe file", "no_such_file.yaml"});
  expect_error([] { load_recipe_string("base: x.yaml\n" + kMinimal, "ckpt"); }, {"ckpt:1", "base: is not allowed"});
}

TEST(Recipe, BaseThatIsNotARegularFileIsRefused) {
  const std::string dir = ::testing::TempDir() + "recipe_base_test";
  std::filesystem::create_directories(dir + "/folder.yaml");
  for (const std::string base : {"folder.yaml", "/dev/zero"}) {  // a folder reads as nothing, /dev/zero never ends
    const std::string path = dir + "/child.yaml";
    std::ofstream(path) << "# child\nbase: " << base << "\n" << kMinimal;
    expect_error([&] { load_recipe(path); },
                 {path + ":2: base: recipe file", base, base == "/dev/zero" ? "a character device" : "a directory"});
  }
  expect_error([&] { load_recipe(dir); }, {"recipe file '" + dir + "'", "a directory"});
  std::filesystem::remove_all(dir);
}

TEST(Recipe, RetiredKeysAreRefusedInFilesAndIgnoredInSavedRecipes) {
  const std::string dir = ::testing::TempDir() + "recipe_retired_test";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/r.yaml";
  std::ofstream(path) << kMinimal << "model:\n  arch: llama\n";
  expect_error([&] { load_recipe(path); }, {path + ":4", "model.arch was removed (it was never used)"});
  std::ofstream(path) << kMinimal << "moe: {ep_max: 4}\n";
  expect_error([&] { load_recipe(path); }, {path + ":3", "moe.ep_max was removed", "dist.ep"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"moe.ep_max=2"}); }, {"command line", "moe.ep_max was removed"});
  // A recipe saved in an older checkpoint wrote every key, the retired ones too.
  Recipe old = load_recipe_string(kMinimal + "model: {arch: gpt}\nmoe: {ep_max: 1}\n", "old.h5:recipe");
  EXPECT_TRUE(old == load_recipe_string(kMinimal, "t.yaml"));
  std::filesystem::remove_all(dir);
}

TEST(Recipe, UnterminatedQuoteNamesTheLineWhereItBegan) {
  // The quote opened on line 3 runs to the quote on line 6, swallowing the keys between.
  const std::string text = kMinimal + "log:\n  progress: \"plain\n  every: 5\ncheckpoint:\n  resume: \"auto\"\n";
  expect_error([&] { load_recipe_string(text, "t.yaml"); }, {"t.yaml:4", "quoted string", "not closed on its line"});
  const std::string eof = kMinimal + "train:\n  sample_prompt: 'And God said\n";
  expect_error([&] { load_recipe_string(eof, "t.yaml"); }, {"t.yaml:4", "quoted string", "not closed"});
}

TEST(Recipe, WhereNamesTheFileAndLineOfAKey) {
  Recipe r = load_recipe_string(kMinimal + "model:\n  layers: 3\n", "t.yaml", {"model.d_model=48"});
  EXPECT_EQ(r.where({"model.layers"}), "t.yaml:4");
  EXPECT_EQ(r.where({"model.heads", "model.d_model"}), "command line");
  EXPECT_EQ(r.where({"model.heads"}), "t.yaml");  // not set: the recipe's name
}

TEST(Recipe, YamlSyntaxErrorNamesLine) {
  expect_error([] { load_recipe_string(kMinimal + "model: {layers: [1,\n", "t.yaml"); }, {"t.yaml:", "YAML syntax error"});
}

TEST(Recipe, MissingRequiredKeyIsNamed) {
  expect_error([] { load_recipe_string("train: {steps: 10, micro_batch: 2, grad_accum: 3, run_dir: r}\n", "t.yaml"); },
               {"t.yaml", "missing required key 'data.train'"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"train.run_dir="}); },
               {"command line", "train.run_dir", "empty string"});
}

TEST(Recipe, CrossFieldChecks) {
  expect_error([] { load_recipe_string(kMinimal + "model: {d_model: 100, heads: 3}\n", "t.yaml"); },
               {"t.yaml:3", "model.heads = 3 does not divide model.d_model = 100"});
  // 6 layers, every 2: MoE blocks 2, 4, 6, so a Pyramid list needs three counts.
  expect_error([] { load_recipe_string(kMinimal + "model: {layers: 6}\nmoe: {experts: [4, 8]}\n", "t.yaml"); },
               {"t.yaml:4", "moe.experts lists 2 expert counts but the model has 3 MoE layers"});
  expect_error([] { load_recipe_string(kMinimal + "moe: {experts: 2, top_k: 4}\n", "t.yaml"); },
               {"t.yaml:3", "moe.top_k = 4 exceeds"});
  expect_error([] { load_recipe_string(kMinimal + "model: {layers: 2}\nmoe: {experts: 2, every: 3}\n", "t.yaml"); },
               {"t.yaml:4", "moe.every = 3 leaves no MoE block"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"moe.mlp_type=residual"}); },
               {"command line", "moe.mlp_type = residual needs MoE layers"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"train.eval_every=5"}); },
               {"command line", "train.eval_every = 5 needs validation shards"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"schedule.warmup_steps=11"}); },
               {"command line", "schedule.warmup_steps = 11 must be less than train.steps = 10"});
  expect_error([] { load_recipe_string(kMinimal + "schedule: {warmup_steps: 10}\n", "t.yaml"); },
               {"t.yaml:3", "schedule.warmup_steps = 10 must be less than train.steps = 10"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"train.sample_every=5"}); },
               {"command line", "train.sample_every = 5 needs data.tokenizer"});
  expect_error([] { load_recipe_string(kMinimal + "model: {tie_embeddings: false}\n", "t.yaml"); },
               {"t.yaml:3", "model.tie_embeddings = false is not implemented"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"distill.stop_at=2.5"}); },
               {"command line", "distill.stop_at = 2.5", "whole number"});
  Recipe r = load_recipe_string(kMinimal + "model: {layers: 5}\nmoe: {experts: [4, 8]}\n", "t.yaml");
  EXPECT_EQ(r.moe.moe_layer_count(r.model.layers), 2);
  EXPECT_FALSE(r.moe.is_moe_block(1));
  EXPECT_TRUE(r.moe.is_moe_block(4));
  EXPECT_EQ(r.moe.experts_at(1), 8);
}

TEST(Recipe, BatchNeedsTwoOfThree) {
  expect_error([] { load_recipe_string("data: {train: x}\ntrain: {steps: 1, micro_batch: 4, run_dir: r}\n", "t.yaml"); },
               {"t.yaml:2", "give two of global_batch, micro_batch, grad_accum", "micro_batch = 4"});
  expect_error([] { load_recipe_string(kMinimal, "t.yaml", {"train.global_batch=10"}); },
               {"command line", "train.global_batch = 10 is not a multiple of", "= 6"});
}

TEST(Recipe, ResolveBatchDerivesTheThird) {
  Recipe r = load_recipe_string(kMinimal, "t.yaml");  // micro 2, accum 3
  resolve_batch(r, 4);
  EXPECT_EQ(r.train.global_batch, 24);

  r = load_recipe_string(kMinimal, "t.yaml", {"train.grad_accum=0", "train.global_batch=64"});
  resolve_batch(r, 4);
  EXPECT_EQ(r.train.grad_accum, 8);  // 64 / (2 x 4)

  r = load_recipe_string(kMinimal, "t.yaml", {"train.micro_batch=0", "train.global_batch=48"});
  resolve_batch(r, 2);
  EXPECT_EQ(r.train.micro_batch, 8);  // 48 / (3 x 2)

  r = load_recipe_string(kMinimal, "t.yaml", {"train.global_batch=12"});
  resolve_batch(r, 2);  // 2 x 3 x 2 = 12: consistent
  EXPECT_EQ(r.train.global_batch, 12);
}

TEST(Recipe, ResolveBatchRefusesInconsistentValues) {
  Recipe r = load_recipe_string(kMinimal, "t.yaml", {"train.global_batch=12"});
  expect_error([&] { resolve_batch(r, 4); },
               {"train.global_batch = 12 but train.micro_batch x train.grad_accum x dp size = 2 x 3 x 4 = 24"});
  r = load_recipe_string(kMinimal, "t.yaml", {"train.grad_accum=0", "train.global_batch=64"});
  expect_error([&] { resolve_batch(r, 3); }, {"train.global_batch = 64 is not a multiple of train.micro_batch x dp size",
                                                "cannot derive train.grad_accum"});
  expect_error([&] { resolve_batch(r, 0); }, {"data-parallel size >= 1"});
}

TEST(Recipe, ToYamlRoundTrips) {
  Recipe r = load_recipe(kData + "sub/base_grandchild.yaml",
                         {"optim.lr=3e-4", "optim.eps=1e-8", "model.dropout=0.1", "train.sample_prompt=\"a\\\"b\\\\c\\n\\td\"",
                          "data.val=v/*.bin", "distill.stop_at=0.7", "model.dtype=bf16", "log.progress=plain",
                          "train.seed=7"});
  resolve_batch(r, 2);
  const std::string text = to_yaml(r);
  EXPECT_EQ(text.find("base:"), std::string::npos);
  Recipe back = load_recipe_string(text, "resolved.yaml");
  EXPECT_TRUE(back == r) << text;
  EXPECT_EQ(back.train.sample_prompt, "a\"b\\c\n\td");
  EXPECT_EQ(to_yaml(back), text);
  // Every field of the schema is emitted.
  for (const auto& section : recipe_schema())
    for (const auto& f : section.fields)
      EXPECT_NE(text.find("\n  " + f.name + ": "), std::string::npos) << section.name << "." << f.name;
  // Control characters leave as JSON's \u00XX escapes, which YAML reads back.
  back.train.sample_prompt = std::string("\x01\x1f\x7f\b\f\xC3\xA9\0z", 9);
  EXPECT_NE(to_yaml(back).find(R"("\u0001\u001f\u007f\u0008\u000c)" "\xC3\xA9" R"(\u0000z")"), std::string::npos);
  EXPECT_EQ(load_recipe_string(to_yaml(back), "resolved.yaml").train.sample_prompt, back.train.sample_prompt);
  back.train.sample_prompt = r.train.sample_prompt;
  // A changed setting makes the recipes differ.
  back.moe.top_k = 2;
  EXPECT_FALSE(back == r);
}

TEST(Recipe, DataMixtureListRoundTripsAndBadEntriesNameTheirKey) {
  Recipe r = load_recipe_string(kMinimal, "t.yaml", {"data.train=[{path: a/*.bin, weight: 3}, {path: \"b c.bin\"}]"});
  EXPECT_EQ(r.data.train, (std::vector<DataSource>{{"a/*.bin", 3.0}, {"b c.bin", 1.0}}));
  Recipe back = load_recipe_string(to_yaml(r), "resolved.yaml");
  EXPECT_EQ(back.data.train, r.data.train) << to_yaml(r);
  const auto bad = [](const std::string& list) {
    return [list] { load_recipe_string(kMinimal, "t.yaml", {"data.train=" + list}); };
  };
  expect_error(bad("[{path: a.bin}, {path: b.bin, weight: -1}]"), {"data.train[1].weight: -1 is out of range"});
  expect_error(bad("[{path: a.bin, weight: x}]"), {"data.train[0].weight: expected a number > 0"});
  expect_error(bad("[{path: a.bin, paht: b}]"), {"data.train[0]: unknown key 'paht'", "valid keys: path, weight"});
  expect_error(bad("[{weight: 1}]"), {"data.train[0]: missing 'path'"});
  expect_error(bad("[a.bin]"), {"data.train[0]: expected a mapping {path: glob, weight: w}"});
  expect_error(bad("[]"), {"data.train: the list is empty"});
  expect_error(bad("{path: a.bin}"), {"data.train: expected a glob, or a list of {path: glob, weight: w}"});
}

TEST(Recipe, EditDistance) {
  EXPECT_EQ(edit_distance("", "abc"), 3);
  EXPECT_EQ(edit_distance("layrs", "layers"), 1);
  EXPECT_EQ(edit_distance("kitten", "sitting"), 3);
  EXPECT_EQ(did_you_mean("lrr", {"lr", "eps", "beta1"}), " (did you mean 'lr'?)");
  EXPECT_EQ(did_you_mean("zzzzzz", {"lr", "eps"}), "");
}

TEST(ShippedRecipes, EveryOneValidatesAndRoundTrips) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::path(MT_SOURCE_DIR) / "recipes";
  int count = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    SCOPED_TRACE(entry.path().string());
    Recipe r = load_recipe(entry.path().string());
    resolve_batch(r, 1);
    EXPECT_TRUE(load_recipe_string(to_yaml(r), "resolved") == r);
    ++count;
  }
  EXPECT_GE(count, 4);
}

TEST(ShippedRecipes, PaperShapes) {
  const std::string dir = std::string(MT_SOURCE_DIR) + "/recipes/";
  Recipe big = load_recipe(dir + "dense-1.3b.yaml");
  EXPECT_EQ(big.model.layers, 24);
  EXPECT_EQ(big.model.d_model, 2048);
  EXPECT_EQ(big.model.heads, 16);
  EXPECT_EQ(big.model.seq_len, 2048);
  EXPECT_DOUBLE_EQ(big.model.init_std, 0.014);
  EXPECT_DOUBLE_EQ(big.optim.lr, 2e-4);
  EXPECT_EQ(big.train.global_batch, 512);
  Recipe quick = load_recipe(dir + "quickstart.yaml");
  EXPECT_EQ(quick.train.device, TrainSection::Device::kCpu);
  EXPECT_EQ(quick.data.tokenizer, "data/kjv/tokenizer.bpe");
}

}  // namespace
}  // namespace mt
