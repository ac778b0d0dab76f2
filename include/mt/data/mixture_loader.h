// MixtureLoader: training batches drawn from several token sources by weight (data.train as a list),
// each source a TokenLoader with its own seeded window order and position, all saved for exact resume.
//
// Note [Mixture sampling]
// The sequences of all ranks are numbered g = 0, 1, 2, ... in the order steps consume them. Sequence
// g comes from source s(g): the first s with u(g) * (w_0 + ... + w_last) < w_0 + ... + w_s, where
// u(g) in [0, 1) is the top 53 bits of SplitMix64(seed ^ mix(kMixtureStream + g)).next() (mix as in
// permutation.h); so the draw depends only on the seed and g, not on B, dp_size or when a run resumed.
// A step takes sequences n .. n + B*dp_size - 1 (n = sequences drawn so far, the sum of every
// source's count). If source s is drawn c times in the step and its epoch has fewer than c windows
// left, it moves to its next epoch first (as TokenLoader does with B*dp_size); its k-th draw in the
// step is window position index_s + k of its epoch order. Rank r takes sequences r, r + dp_size, ...
// of the step, as TokenLoader's ranks do. Source i's order uses the seed train.seed + i, so with one
// source the batches are exactly TokenLoader's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "mt/data/token_loader.h"

namespace mt {

struct MixtureSource {
  std::string shards;  // glob
  double weight = 1.0;  // > 0, relative
};

// One source's place: its epoch and window position, and the sequences drawn from it (all ranks).
struct SourcePosition {
  LoaderState at;
  int64_t sequences = 0;
  bool operator==(const SourcePosition&) const = default;
};

class MixtureLoader {
 public:
  // `common` gives B, T, the rank, seed, vocabulary and order; its `shards` are unused.
  MixtureLoader(const std::vector<MixtureSource>& sources, const TokenLoaderOptions& common);

  // The next (B, T+1) batch of this rank (layout as TokenLoader::next_batch).
  std::vector<int32_t> next_batch();

  const std::vector<SourcePosition>& state() const { return state_; }
  // One position per source; each must fit its source's epoch.
  void set_state(const std::vector<SourcePosition>& state);

  size_t num_sources() const { return sources_.size(); }
  const TokenLoader& source(size_t i) const { return sources_[i]; }

  // The source of sequence g (Note [Mixture sampling]).
  size_t source_of(int64_t g) const;

 private:
  std::vector<TokenLoader> sources_;
  std::vector<double> cumulative_;  // w_0 + ... + w_s
  std::vector<SourcePosition> state_;
  uint64_t seed_;
};

}  // namespace mt
