// Shared by the trainer tests: MPI set up once per test binary, fresh temp folders, token shards of a
// repetitive pseudo-text (so the loss falls), a tiny recipe, and the training losses a run logged.
#pragma once
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <memory>
#include <string>

#include "mt/data/token_shard.h"
#include "mt/dist/communicator.h"
#include "report/run_metrics.h"

namespace mt::testing {

class MpiEnvironment : public ::testing::Environment {
 public:
  void SetUp() override { mpi_ = std::make_unique<MpiRuntime>(nullptr, nullptr); }
  void TearDown() override { mpi_.reset(); }

 private:
  std::unique_ptr<MpiRuntime> mpi_;
};
// An inline variable: registered once however many test files include this header.
inline const ::testing::Environment* const kMpiEnvironment = ::testing::AddGlobalTestEnvironment(new MpiEnvironment);

inline std::filesystem::path fresh_dir(const std::string& name) {
  std::filesystem::path d = std::filesystem::temp_directory_path() / ("mt_train_" + name + "_" + std::to_string(::getpid()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

// train_000000.bin (40000 tokens < 256) and val_000000.bin in `dir`.
inline void write_data(const std::filesystem::path& dir) {
  std::vector<int32_t> tokens;
  uint64_t s = 12345;
  for (int i = 0; i < 40000; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    tokens.push_back(static_cast<int32_t>((i % 17 == 0) ? (s >> 33) % 200 : (i * 7) % 50));
  }
  write_shard((dir / "train_000000.bin").string(), tokens);
  write_shard((dir / "val_000000.bin").string(), std::vector<int32_t>(tokens.begin(), tokens.begin() + 5000));
}

// 2 layers, d 32, vocab 256, context 16; 20 steps of 2 micro-batches of 4, checkpoints at 10 and 20.
inline std::string recipe_text(const std::filesystem::path& data, const std::filesystem::path& run,
                               const std::string& moe = "", const std::string& device = "cpu") {
  std::string dtype = device == "cuda" ? "bf16" : "f32";
  return "model: {layers: 2, d_model: 32, heads: 2, seq_len: 16, vocab_size: 256, dropout: 0.1, dtype: " + dtype + "}\n" + moe +
         "data: {train: \"" + (data / "train_*.bin").string() + "\", val: \"" + (data / "val_*.bin").string() + "\"}\n"
         "optim: {lr: 3.0e-3}\n"
         "schedule: {kind: cosine, warmup_steps: 3}\n"
         "train: {steps: 20, micro_batch: 4, grad_accum: 2, device: " + device + ", run_dir: \"" + run.string() +
         "\", eval_every: 10, eval_steps: 2}\n"
         "checkpoint: {every: 10, keep: 5}\n"
         "log: {every: 5, progress: plain}\n";
}

// Training loss by step, from <run>/metrics.jsonl.
inline std::map<int64_t, double> losses(const std::filesystem::path& run) {
  std::map<int64_t, double> out;
  for (const TrainPoint& p : read_run_metrics((run / "metrics.jsonl").string()).train) out[p.step] = p.loss;
  return out;
}

}  // namespace mt::testing
