// MixtureLoader: per step, draw each sequence's source, advance the sources, read this rank's windows
// (Note [Mixture sampling] in the header).
#include "mt/data/mixture_loader.h"

#include <algorithm>

#include "mt/core/error.h"
#include "mt/data/permutation.h"

namespace mt {
namespace {

constexpr uint64_t kMixtureStream = 0x6d69787475726573ull;  // "mixtures"

}  // namespace

MixtureLoader::MixtureLoader(const std::vector<MixtureSource>& sources, const TokenLoaderOptions& common)
    : state_(sources.size()), seed_(common.seed) {
  MT_CHECK(!sources.empty(), "data mixture: expected at least one source");
  double total = 0;
  for (size_t i = 0; i < sources.size(); ++i) {
    MT_CHECK(sources[i].weight > 0, "data mixture: source ", i, " ('", sources[i].shards,
             "'): expected a weight > 0, got ", sources[i].weight);
    TokenLoaderOptions o = common;
    o.shards = {sources[i].shards};
    o.seed = common.seed + i;
    sources_.emplace_back(o);
    cumulative_.push_back(total += sources[i].weight);
  }
}

size_t MixtureLoader::source_of(int64_t g) const {
  const uint64_t draw = SplitMix64(seed_ ^ SplitMix64(kMixtureStream + static_cast<uint64_t>(g)).next()).next();
  const double u = static_cast<double>(draw >> 11) * 0x1p-53;  // [0, 1)
  const double x = u * cumulative_.back();
  const size_t s = static_cast<size_t>(std::upper_bound(cumulative_.begin(), cumulative_.end(), x) - cumulative_.begin());
  return std::min(s, sources_.size() - 1);
}

void MixtureLoader::set_state(const std::vector<SourcePosition>& state) {
  MT_CHECK(state.size() == sources_.size(), "data mixture: a saved position has ", state.size(),
           " source(s), but data.train lists ", sources_.size());
  for (size_t i = 0; i < state.size(); ++i) {
    MT_CHECK(state[i].sequences >= 0, "data mixture: source ", i, ": negative sequence count ", state[i].sequences);
    sources_[i].set_state(state[i].at);
  }
  state_ = state;
}

std::vector<int32_t> MixtureLoader::next_batch() {
  const TokenLoaderOptions& o = sources_[0].options();
  const int64_t B = o.batch_size, T = o.seq_len, dp = o.dp_size;
  int64_t n = 0;
  for (const SourcePosition& p : state_) n += p.sequences;
  std::vector<size_t> from(B * dp);  // the step's sequences' sources
  std::vector<int64_t> count(sources_.size(), 0);
  for (int64_t j = 0; j < B * dp; ++j) ++count[from[j] = source_of(n + j)];
  for (size_t s = 0; s < sources_.size(); ++s) {
    LoaderState& at = state_[s].at;
    if (at.index + count[s] > sources_[s].num_windows()) at = {at.epoch + 1, 0};
  }
  std::vector<int32_t> batch(B * (T + 1));  // (B, T+1)
  std::vector<int64_t> taken(sources_.size(), 0);
  for (int64_t j = 0; j < B * dp; ++j) {
    const size_t s = from[j];
    const int64_t position = state_[s].at.index + taken[s]++;
    if (j % dp == o.dp_rank)
      sources_[s].read_window(state_[s].at.epoch, position, std::span(batch).subspan((j / dp) * (T + 1), T + 1));
  }
  for (size_t s = 0; s < sources_.size(); ++s) {
    state_[s].at.index += count[s];
    state_[s].sequences += count[s];
  }
  return batch;
}

}  // namespace mt
