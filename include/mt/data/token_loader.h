// TokenLoader: batches of token windows from llm.c shards, for training (shuffled) and validation
// (sequential), sharded across data-parallel ranks, with a small state for exact resume.
//
// The shards (in the order given, glob patterns expanded and sorted) form one token stream of N
// tokens. Sample w is the window stream[w*T, w*T + T + 1): T + 1 consecutive tokens, windows
// strided by T (each token is a target once), W = floor((N - 1) / T) of them.
// Each epoch orders the W windows: kShuffled uses shuffled_indices(W, seed, epoch) (permutation.h),
// kSequential the identity. One step consumes the next B * dp_size windows of that order; rank r
// takes positions r, r + dp_size, r + 2*dp_size, ... of them, so the ranks are disjoint and together
// cover the step. An epoch has floor(W / (B * dp_size)) steps; the remaining windows are skipped.
//
// The shards are read window by window (ShardStream), never whole: a rank reads only the windows it
// trains on, and an id >= vocab_size is found when its window is read. The one thing that grows with
// the corpus is the epoch's order, W int64s (8 bytes per T tokens), made when the epoch starts.
//
// Batch layout: B rows of T + 1 int32 tokens, row-major (B, T+1). Inputs are row[0..T),
// targets row[1..T+1) (the same window shifted by one).
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "mt/data/shard_stream.h"

namespace mt {

enum class LoaderOrder { kShuffled, kSequential };

struct TokenLoaderOptions {
  std::vector<std::string> shards;  // paths or glob patterns
  int64_t batch_size = 0;           // B: windows per rank per step
  int64_t seq_len = 0;              // T
  int dp_rank = 0;
  int dp_size = 1;
  uint64_t seed = 0;
  int32_t vocab_size = 0;  // every token must be below it
  LoaderOrder order = LoaderOrder::kShuffled;
};

// Where the next step starts: `index` counts windows of the epoch's order already consumed by all
// ranks together, so a state is the same on every rank and survives a change of B or dp_size.
struct LoaderState {
  int64_t epoch = 0;
  int64_t index = 0;
  bool operator==(const LoaderState&) const = default;
};

class TokenLoader {
 public:
  explicit TokenLoader(const TokenLoaderOptions& options);

  // The next (B, T+1) batch of this rank; moves to the next epoch when the current one is used up.
  std::vector<int32_t> next_batch();

  // Window `position` of epoch `epoch`'s order: T + 1 tokens into `row`.
  void read_window(int64_t epoch, int64_t position, std::span<int32_t> row);

  LoaderState state() const { return state_; }
  void set_state(const LoaderState& state);

  int64_t num_tokens() const { return stream_.size(); }
  int64_t num_windows() const { return num_windows_; }
  int64_t steps_per_epoch() const { return num_windows_ / (options_.batch_size * options_.dp_size); }
  const std::vector<std::string>& files() const { return stream_.files(); }
  const TokenLoaderOptions& options() const { return options_; }

 private:
  const std::vector<int64_t>& order_for(int64_t epoch);

  TokenLoaderOptions options_;
  ShardStream stream_;
  int64_t num_windows_ = 0;
  LoaderState state_;
  int64_t order_epoch_ = -1;
  std::vector<int64_t> order_;
};

}  // namespace mt
