// ShardSeries: appending writer of a numbered series of token shards (see header).
#include "mt/data/shard_series.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>

#include "mt/core/error.h"
#include "mt/data/token_shard.h"

namespace mt {
namespace {

// The shard header (token_shard.h) for `tokens` tokens.
std::vector<int32_t> header_for(int64_t tokens) {
  std::vector<int32_t> h(kShardHeaderInts, 0);
  h[0] = kShardMagic;
  h[1] = kShardVersion;
  h[2] = static_cast<int32_t>(tokens);
  return h;
}

void write_header(const std::string& path, int64_t tokens) {
  std::fstream f(path, std::ios::binary | std::ios::in | std::ios::out);
  const std::vector<int32_t> h = header_for(tokens);
  f.write(reinterpret_cast<const char*>(h.data()), kShardHeaderBytes);
  f.flush();
  MT_CHECK(f, "cannot write the header of token shard '", path, "': ", std::strerror(errno));
}

}  // namespace

ShardSeries::ShardSeries(std::string dir, std::string prefix, int64_t shard_tokens)
    : dir_(std::move(dir)), prefix_(std::move(prefix)), shard_tokens_(shard_tokens) {
  MT_CHECK(shard_tokens_ >= 1 && shard_tokens_ <= INT32_MAX, "token shards: expected a shard size in [1, ", INT32_MAX,
           "] tokens, got ", shard_tokens_);
}

ShardSeries::~ShardSeries() {
  if (committed_) return;
  out_.close();
  std::error_code ec;
  for (const std::string& p : temp_) std::filesystem::remove(p, ec);
}

std::string ShardSeries::name(size_t index) const {
  char n[64];
  std::snprintf(n, sizeof(n), "%s_%06zu.bin", prefix_.c_str(), index);
  return (std::filesystem::path(dir_) / n).string();
}

void ShardSeries::append(std::span<const int32_t> tokens) {
  std::vector<uint16_t> ids;
  while (!tokens.empty()) {
    if (!out_.is_open()) {
      temp_.push_back(name(temp_.size()) + ".tmp");
      out_.open(temp_.back(), std::ios::binary | std::ios::trunc);
      MT_CHECK(out_, "cannot open '", temp_.back(), "' for writing: ", std::strerror(errno));
      const std::vector<int32_t> h = header_for(0);  // the count is written when the shard is full
      out_.write(reinterpret_cast<const char*>(h.data()), kShardHeaderBytes);
      in_shard_ = 0;
    }
    const size_t n = static_cast<size_t>(std::min<int64_t>(shard_tokens_ - in_shard_, static_cast<int64_t>(tokens.size())));
    ids.resize(n);
    for (size_t i = 0; i < n; ++i) {
      MT_CHECK(tokens[i] >= 0 && tokens[i] < 65536, "token shard '", name(temp_.size() - 1), "': token ", in_shard_ + i,
               " is ", tokens[i], ", but shards store uint16 ids (0..65535)");
      ids[i] = static_cast<uint16_t>(tokens[i]);
    }
    out_.write(reinterpret_cast<const char*>(ids.data()), static_cast<std::streamsize>(2 * n));
    MT_CHECK(out_, "cannot write '", temp_.back(), "': ", std::strerror(errno));
    in_shard_ += static_cast<int64_t>(n);
    tokens_ += static_cast<int64_t>(n);
    tokens = tokens.subspan(n);
    if (in_shard_ == shard_tokens_) finish_shard();
  }
}

void ShardSeries::finish_shard() {
  out_.close();
  MT_CHECK(out_, "cannot write '", temp_.back(), "': ", std::strerror(errno));
  write_header(temp_.back(), in_shard_);
}

void ShardSeries::close() {
  if (out_.is_open()) finish_shard();
}

void ShardSeries::truncate(int64_t tokens) {
  close();
  MT_ASSERT(tokens >= 0 && tokens <= tokens_);
  const size_t keep = static_cast<size_t>((tokens + shard_tokens_ - 1) / shard_tokens_);
  std::error_code ec;
  for (size_t i = keep; i < temp_.size(); ++i) {
    std::filesystem::remove(temp_[i], ec);
    MT_CHECK(!ec, "cannot remove '", temp_[i], "': ", ec.message());
  }
  temp_.resize(keep);
  const int64_t last = tokens - static_cast<int64_t>(keep == 0 ? 0 : keep - 1) * shard_tokens_;
  if (keep > 0 && last < tokens_ - static_cast<int64_t>(keep - 1) * shard_tokens_) {  // cut the last kept shard
    std::filesystem::resize_file(temp_.back(), static_cast<uintmax_t>(kShardHeaderBytes + 2 * last), ec);
    MT_CHECK(!ec, "cannot cut '", temp_.back(), "': ", ec.message());
    write_header(temp_.back(), last);
  }
  tokens_ = tokens;
}

std::vector<std::string> ShardSeries::commit() {
  close();
  std::vector<std::string> paths;
  for (size_t i = 0; i < temp_.size(); ++i) {
    paths.push_back(name(i));
    std::error_code ec;
    std::filesystem::rename(temp_[i], paths.back(), ec);
    MT_CHECK(!ec, "cannot rename '", temp_[i], "' to '", paths.back(), "': ", ec.message());
  }
  committed_ = true;
  return paths;
}

}  // namespace mt
