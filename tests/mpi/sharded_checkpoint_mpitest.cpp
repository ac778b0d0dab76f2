// Sharded checkpoints under 2 and 4 ranks (Note [Sharded checkpoints]): pieces written once, spread
// over the holders, read back by any rows; a missing or damaged part refused by name; and a training
// checkpoint saved by every rank (ep 2, zero 1) loaded on 1, 2 and 4 ranks with other ep/zero settings
// holding exactly the state a single-file save of the same run holds.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "mt/io/checkpoint_dir.h"
#include "mt/io/checkpoint_source.h"
#include "mt/io/recipe.h"
#include "mt/data/token_shard.h"
#include "mt/train/trainer.h"
#include "mt/train/training_run.h"

using namespace mt;
namespace fs = std::filesystem;

namespace {

// A folder every rank names the same (rank 0's pid).
fs::path shared_dir(const Communicator& w, const std::string& name) {
  Tensor pid = Tensor::from_vector<int64_t>({static_cast<int64_t>(::getpid())}, {1});
  w.broadcast(pid, 0);
  return fs::temp_directory_path() / ("mt_sharded_" + name + "_" + std::to_string(pid.to_vector<int64_t>()[0]));
}

std::vector<float> ramp(int64_t n, float base) {
  std::vector<float> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(base + static_cast<float>(i));
  return v;
}

// Held by rank r of n: "rep" (6, 3) on every rank; "split" (2n, 3), rows 2r..2r+1; "own.r" (r + 1);
// "scalar" (0-d) on every rank.
std::vector<ShardPiece> pieces_of(int r, int n) {
  std::vector<ShardPiece> p;
  p.push_back({"rep", Tensor::from_vector<float>(ramp(18, 0), {6, 3}), {6, 3}, 0});
  p.push_back({"split", Tensor::from_vector<float>(ramp(6, 1000.f + 6 * r), {2, 3}), {2 * n, 3}, 2 * r});
  p.push_back({"own." + std::to_string(r), Tensor::from_vector<float>(ramp(r + 1, 100.f * r), {r + 1}), {r + 1}, 0});
  p.push_back({"scalar", Tensor::from_vector<double>({2.5}, {}), {}, 0});
  return p;
}

fs::path write_synthetic(const Communicator& w, const std::string& name) {
  const fs::path dir = shared_dir(w, name);
  if (w.rank() == 0) fs::remove_all(dir);
  w.barrier();
  write_sharded_checkpoint(dir / "ck", w, pieces_of(w.rank(), w.size()),
                           [](CheckpointWriter& idx) { idx.write_int("step", 7); });
  return dir;
}

// train_000000.bin and val_000000.bin: a repetitive pseudo-text of 20000 tokens < 256.
void write_token_data(const fs::path& dir) {
  std::vector<int32_t> tokens;
  uint64_t s = 12345;
  for (int i = 0; i < 20000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    tokens.push_back(static_cast<int32_t>((i % 17 == 0) ? (s >> 33) % 200 : (i * 7) % 50));
  }
  write_shard((dir / "train_000000.bin").string(), tokens);
  write_shard((dir / "val_000000.bin").string(), std::vector<int32_t>(tokens.begin(), tokens.begin() + 4000));
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(ShardedCheckpoint, EveryPieceWrittenOnceAndReadBackByAnyRows) {
  Communicator w = Communicator::world();
  const int n = w.size();
  const fs::path dir = write_synthetic(w, "rows");
  const CheckpointSource src(dir / "ck");
  ASSERT_TRUE(src.sharded());
  EXPECT_EQ(src.parts(), n);
  EXPECT_EQ(src.meta().read_int("step"), 7);
  std::vector<float> rep(18);
  src.read("rep", DType::kF32, {6, 3}, rep.data());
  EXPECT_EQ(rep, ramp(18, 0));
  std::vector<float> split(static_cast<size_t>(6 * n));
  src.read("split", DType::kF32, {2 * n, 3}, split.data());
  for (int r = 0; r < n; ++r)
    EXPECT_EQ(std::vector<float>(split.begin() + 6 * r, split.begin() + 6 * r + 6), ramp(6, 1000.f + 6 * r));
  // Rows 1..2n-2: across every piece, the first and last cut.
  std::vector<float> mid(static_cast<size_t>(3 * (2 * n - 2)));
  src.read_rows("split", DType::kF32, {2 * n, 3}, 1, 2 * n - 2, mid.data());
  EXPECT_EQ(mid, std::vector<float>(split.begin() + 3, split.end() - 3));
  for (int r = 0; r < n; ++r) {
    std::vector<float> own(static_cast<size_t>(r + 1));
    src.read("own." + std::to_string(r), DType::kF32, {r + 1}, own.data());
    EXPECT_EQ(own, ramp(r + 1, 100.f * r));
  }
  double scalar = 0;
  src.read("scalar", DType::kF64, {}, &scalar);
  EXPECT_EQ(scalar, 2.5);
  // Each tensor once in all the parts; the replicated ones not all on one rank.
  int rep_parts = 0, total = 0;
  for (int p = 0; p < n; ++p) {
    CheckpointReader part(dir / "ck" / sharded_part_name(p, n));
    total += static_cast<int>(part.names().size());
    rep_parts += part.has("rep") || part.has("scalar");
    EXPECT_EQ(part.read_int("part"), p);
  }
  EXPECT_EQ(total, 2 + n + n);  // rep, scalar, n split pieces, n own tensors
  EXPECT_EQ(rep_parts, 2);      // the two shared tensors went to two different ranks
  EXPECT_FALSE(fs::exists(dir / "ck.tmp"));
  w.barrier();
  if (w.rank() == 0) fs::remove_all(dir);
}

TEST(ShardedCheckpoint, MissingOrDamagedPartIsRefusedByName) {
  Communicator w = Communicator::world();
  const int n = w.size();
  const fs::path dir = write_synthetic(w, "damage");
  w.barrier();
  if (w.rank() == 0) {
    const std::string last = sharded_part_name(n - 1, n);
    fs::copy(dir / "ck", dir / "missing");
    fs::remove(dir / "missing" / last);
    EXPECT_NE(error_of([&] { CheckpointSource s(dir / "missing"); }).find("part " + last + " is missing"), std::string::npos);
    // A byte of the "split" piece's data flipped: the piece is last written in the part, the data
    // precedes HDF5's metadata at the end, so the byte 8 before the last data value is found by value.
    fs::copy(dir / "ck", dir / "damaged");
    const fs::path part = dir / "damaged" / last;
    std::string bytes;
    {
      std::ifstream in(part, std::ios::binary);
      bytes.assign(std::istreambuf_iterator<char>(in), {});
    }
    const float want = 1000.f + 6 * (n - 1) + 5;  // the piece's last value
    size_t at = std::string::npos;
    for (size_t i = 0; i + 4 <= bytes.size() && at == std::string::npos; ++i) {
      float v;
      std::memcpy(&v, bytes.data() + i, 4);
      if (v == want) at = i;
    }
    ASSERT_NE(at, std::string::npos);
    bytes[at] ^= 1;
    std::ofstream(part, std::ios::binary | std::ios::trunc) << bytes;
    const std::string whole = error_of([&] { CheckpointSource s(dir / "damaged"); });
    EXPECT_NE(whole.find(last), std::string::npos) << whole;
    EXPECT_NE(whole.find("'split' is damaged"), std::string::npos) << whole;
    // Opened without reading the data, the piece is refused when read, naming the part and tensor.
    const CheckpointSource lazy(dir / "damaged", Verify::kOnRead);
    std::vector<float> split(static_cast<size_t>(6 * n));
    const std::string on_read = error_of([&] { lazy.read("split", DType::kF32, {2 * n, 3}, split.data()); });
    EXPECT_NE(on_read.find(last + ": tensor 'split' is damaged"), std::string::npos) << on_read;
    // A part of another save (a valid file, another checksum) is refused too.
    fs::copy(dir / "ck", dir / "other");
    fs::copy(dir / "ck" / sharded_part_name(0, n), dir / "other" / last, fs::copy_options::overwrite_existing);
    EXPECT_NE(error_of([&] { CheckpointSource s(dir / "other"); }).find("is not the one the index was written with"),
              std::string::npos);
    // A folder without its index (a write that did not finish) is no checkpoint.
    fs::remove(dir / "other" / kShardedIndexFile);
    EXPECT_NE(error_of([&] { CheckpointSource s(dir / "other"); }).find("not a committed sharded checkpoint"),
              std::string::npos);
    fs::remove_all(dir);
  }
  w.barrier();
}

namespace {

// 4 experts on every other of 2 layers; steps of 8 sequences.
std::string recipe_text(const fs::path& data, const fs::path& run, const std::string& extra) {
  return "model: {layers: 2, d_model: 32, heads: 2, seq_len: 16, vocab_size: 256, dropout: 0.0, dtype: f32}\n"
         "moe: {experts: 4, every: 2}\n"
         "data: {train: \"" + (data / "train_*.bin").string() + "\", val: \"" + (data / "val_*.bin").string() + "\"}\n"
         "optim: {lr: 3.0e-3}\n"
         "schedule: {warmup_steps: 1}\n"
         "train: {steps: 2, global_batch: 8, micro_batch: 2, device: cpu, run_dir: \"" + run.string() + "\"}\n"
         "checkpoint: {every: 2, keep: 5}\n"
         "log: {every: 1, progress: plain}\n" + extra;
}

// Recipe text with `a.b=v` overrides.
Recipe recipe_with(const std::string& text, const std::vector<std::string>& overrides) {
  return load_recipe_string(text, "test.yaml", overrides);
}

}  // namespace

TEST(ShardedCheckpoint, TrainingStateLoadsExactlyOnOtherRankCountsEpAndZero) {
  Communicator w = Communicator::world();
  const fs::path dir = shared_dir(w, "train");
  if (w.rank() == 0) {
    fs::remove_all(dir);
    fs::create_directories(dir / "data");
    write_token_data(dir / "data");
  }
  w.barrier();
  // The same run twice on every rank (ep 2, zero 1): sharded, and a single file as the reference.
  const std::string text = recipe_text(dir / "data", dir / "run", "");
  const std::vector<std::string> saving = {"dist.ep=2", "dist.zero=1"};
  auto with = [](std::vector<std::string> a, const std::vector<std::string>& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
  };
  train(recipe_with(text, with(saving, {"checkpoint.format=sharded", "train.run_dir=" + (dir / "sharded").string()})), w);
  train(recipe_with(text, with(saving, {"train.run_dir=" + (dir / "single").string()})), w);
  const fs::path folder = sharded_checkpoint_path(dir / "sharded", 2);
  const fs::path reference = checkpoint_path(dir / "single", 2);
  ASSERT_TRUE(is_sharded_checkpoint(folder));
  ASSERT_EQ(CheckpointSource(folder).parts(), w.size());

  struct Layout {
    int ranks, ep, zero;
  };
  for (const Layout& l : {Layout{1, 1, 0}, Layout{2, 2, 0}, Layout{2, 1, 1}, Layout{4, 1, 0}, Layout{4, 4, 1}}) {
    if (l.ranks > w.size()) continue;
    Communicator g = w.split(w.rank() / l.ranks, w.rank());
    const std::string tag = str_cat(l.ranks, "ranks_ep", l.ep, "_zero", l.zero, "_group", w.rank() / l.ranks);
    const Recipe r = recipe_with(text, {str_cat("dist.ep=", l.ep), str_cat("dist.zero=", l.zero),
                                        "checkpoint.resume=" + folder.string(),
                                        "train.run_dir=" + (dir / tag).string()});
    TrainingRun run(r, g);
    ASSERT_EQ(run.counters.step, 2);
    // What it loaded, saved as one file by the path every layout shares (the whole state gathered).
    TrainCounters c = run.counters;
    c.rank_rngs.resize(static_cast<size_t>(g.size()), c.rank_rngs[0]);
    c.world_size = g.size();
    const bool lead = g.rank() == 0;
    const StateDict optim = run.optimizer->checkpoint_state(lead);
    const fs::path out = dir / (tag + ".h5");
    save_train_checkpoint(out, *run.model, &optim, &run.schedule, c, run.recipe_yaml, run.sharding.shards, lead);
    if (!lead) continue;
    const CheckpointReader want(reference), got(out);
    ASSERT_EQ(got.names().size(), want.names().size()) << tag;
    for (const std::string& name : want.names()) {
      ASSERT_TRUE(got.has(name)) << tag << ": " << name;
      const TensorInfo& info = want.info(name);
      ASSERT_EQ(got.info(name).shape, info.shape) << tag << ": " << name;
      std::vector<unsigned char> a(static_cast<size_t>(info.numel()) * dtype_size(info.dtype)), b(a.size());
      want.read(name, info.dtype, info.shape, a.data());
      got.read(name, info.dtype, info.shape, b.data());
      EXPECT_TRUE(a == b) << tag << ": tensor " << name << " differs from the single-file save";
    }
    EXPECT_EQ(got.read_int("tokens"), want.read_int("tokens")) << tag;
    EXPECT_EQ(got.read_int("loader_index"), want.read_int("loader_index")) << tag;
  }
  w.barrier();
  if (w.rank() == 0) fs::remove_all(dir);
}
