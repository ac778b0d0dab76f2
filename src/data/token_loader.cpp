// TokenLoader: reads all shards into memory, then serves windows by the epoch's order (see header).
#include "mt/data/token_loader.h"

#include <numeric>

#include "mt/core/error.h"
#include "mt/data/file_glob.h"
#include "mt/data/permutation.h"
#include "mt/data/token_shard.h"

namespace mt {

TokenLoader::TokenLoader(const TokenLoaderOptions& options) : options_(options) {
  MT_CHECK(options_.batch_size >= 1, "data loader: expected batch size >= 1, got ", options_.batch_size);
  MT_CHECK(options_.seq_len >= 1, "data loader: expected sequence length >= 1, got ", options_.seq_len);
  MT_CHECK(options_.dp_size >= 1 && options_.dp_rank >= 0 && options_.dp_rank < options_.dp_size,
           "data loader: expected 0 <= dp_rank < dp_size, got rank ", options_.dp_rank, " of ", options_.dp_size);
  MT_CHECK(options_.vocab_size >= 1, "data loader: expected a vocabulary size >= 1, got ", options_.vocab_size);
  MT_CHECK(!options_.shards.empty(), "data loader: expected at least one shard file or pattern");
  files_ = expand_file_patterns(options_.shards);
  for (const std::string& path : files_) {
    const std::vector<uint16_t> shard = read_shard(path, options_.vocab_size);
    tokens_.insert(tokens_.end(), shard.begin(), shard.end());
  }
  num_windows_ = tokens_.empty() ? 0 : (num_tokens() - 1) / options_.seq_len;
  const int64_t per_step = options_.batch_size * options_.dp_size;
  MT_CHECK(num_windows_ >= per_step, "data loader: ", files_.size(), " shard(s) starting with '", files_.front(),
           "' hold ", num_tokens(), " tokens = ", num_windows_, " windows of ", options_.seq_len + 1,
           " tokens, but one step needs batch ", options_.batch_size, " x ", options_.dp_size, " ranks = ", per_step);
}

const std::vector<int64_t>& TokenLoader::order_for(int64_t epoch) {
  if (order_epoch_ != epoch) {
    if (options_.order == LoaderOrder::kShuffled) {
      order_ = shuffled_indices(num_windows_, options_.seed, static_cast<uint64_t>(epoch));
    } else {
      order_.resize(num_windows_);
      std::iota(order_.begin(), order_.end(), int64_t{0});
    }
    order_epoch_ = epoch;
  }
  return order_;
}

void TokenLoader::set_state(const LoaderState& state) {
  MT_CHECK(state.epoch >= 0 && state.index >= 0 && state.index <= num_windows_, "data loader: state (epoch ",
           state.epoch, ", index ", state.index, ") is out of range for ", num_windows_, " windows");
  state_ = state;
}

std::vector<int32_t> TokenLoader::next_batch() {
  const int64_t B = options_.batch_size, T = options_.seq_len, dp = options_.dp_size;
  if (state_.index + B * dp > num_windows_) state_ = {state_.epoch + 1, 0};
  const std::vector<int64_t>& order = order_for(state_.epoch);
  std::vector<int32_t> batch(B * (T + 1));  // (B, T+1)
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = order[state_.index + b * dp + options_.dp_rank] * T;
    for (int64_t t = 0; t <= T; ++t) batch[b * (T + 1) + t] = tokens_[start + t];
  }
  state_.index += B * dp;
  return batch;
}

}  // namespace mt
