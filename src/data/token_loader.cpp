// TokenLoader: serves windows of the shards' stream by the epoch's order, reading each as needed (see header).
#include "mt/data/token_loader.h"

#include <numeric>
#include <span>

#include "mt/core/error.h"
#include "mt/data/file_glob.h"
#include "mt/data/permutation.h"

namespace mt {
namespace {

const TokenLoaderOptions& check_options(const TokenLoaderOptions& o) {
  MT_CHECK(o.batch_size >= 1, "data loader: expected batch size >= 1, got ", o.batch_size);
  MT_CHECK(o.seq_len >= 1, "data loader: expected sequence length >= 1, got ", o.seq_len);
  MT_CHECK(o.dp_size >= 1 && o.dp_rank >= 0 && o.dp_rank < o.dp_size,
           "data loader: expected 0 <= dp_rank < dp_size, got rank ", o.dp_rank, " of ", o.dp_size);
  MT_CHECK(o.vocab_size >= 1, "data loader: expected a vocabulary size >= 1, got ", o.vocab_size);
  MT_CHECK(!o.shards.empty(), "data loader: expected at least one shard file or pattern");
  return o;
}

}  // namespace

TokenLoader::TokenLoader(const TokenLoaderOptions& options)
    : options_(check_options(options)), stream_(expand_file_patterns(options_.shards), options_.vocab_size) {
  num_windows_ = (num_tokens() - 1) / options_.seq_len;
  const int64_t per_step = options_.batch_size * options_.dp_size;
  MT_CHECK(num_windows_ >= per_step, "data loader: ", files().size(), " shard(s) starting with '", files().front(),
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

void TokenLoader::read_window(int64_t epoch, int64_t position, std::span<int32_t> row) {
  MT_ASSERT(position >= 0 && position < num_windows_ && static_cast<int64_t>(row.size()) == options_.seq_len + 1);
  stream_.read(order_for(epoch)[position] * options_.seq_len, row);
}

std::vector<int32_t> TokenLoader::next_batch() {
  const int64_t B = options_.batch_size, T = options_.seq_len, dp = options_.dp_size;
  if (state_.index + B * dp > num_windows_) state_ = {state_.epoch + 1, 0};
  std::vector<int32_t> batch(B * (T + 1));  // (B, T+1)
  for (int64_t b = 0; b < B; ++b)
    read_window(state_.epoch, state_.index + b * dp + options_.dp_rank, std::span(batch).subspan(b * (T + 1), T + 1));
  state_.index += B * dp;
  return batch;
}

}  // namespace mt
