// ShardStream: windows of the shards' token stream by pread(2), one open per shard touched (see header).
#include "mt/data/shard_stream.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "mt/core/error.h"
#include "mt/data/token_shard.h"

namespace mt {
namespace {

// Reads tokens [first, first + out.size()) of the shard at `path` into out.
void read_tokens(const std::string& path, int64_t first, std::span<uint16_t> out) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  MT_CHECK(fd >= 0, "cannot open token shard '", path, "': ", std::strerror(errno));
  char* dst = reinterpret_cast<char*>(out.data());
  size_t done = 0;
  const size_t want = 2 * out.size();
  while (done < want) {
    const ssize_t n = ::pread(fd, dst + done, want - done, kShardHeaderBytes + 2 * first + static_cast<off_t>(done));
    if (n < 0 && errno == EINTR) continue;
    const int err = errno;
    if (n <= 0) ::close(fd);
    MT_CHECK(n >= 0, "cannot read token shard '", path, "': ", std::strerror(err));
    MT_CHECK(n > 0, "token shard '", path, "': expected tokens ", first, "..", first + static_cast<int64_t>(out.size()),
             ", but the file ends before them (truncated since it was opened?)");
    done += static_cast<size_t>(n);
  }
  ::close(fd);
}

}  // namespace

ShardStream::ShardStream(std::vector<std::string> files, int32_t vocab_size)
    : files_(std::move(files)), begins_{0}, vocab_size_(vocab_size) {
  for (const std::string& path : files_) begins_.push_back(begins_.back() + read_shard_header(path).tokens);
}

void ShardStream::read(int64_t start, std::span<int32_t> out) const {
  const int64_t end = start + static_cast<int64_t>(out.size());
  MT_ASSERT(start >= 0 && end <= size());
  std::vector<uint16_t> ids;
  // The shard holding `start`: the last whose begin is <= start.
  size_t s = static_cast<size_t>(std::upper_bound(begins_.begin(), begins_.end(), start) - begins_.begin()) - 1;
  for (int64_t pos = start; pos < end; ++s) {
    const int64_t first = pos - begins_[s], n = std::min(end, begins_[s + 1]) - pos;
    ids.resize(static_cast<size_t>(n));
    read_tokens(files_[s], first, ids);
    for (int64_t i = 0; i < n; ++i) {
      MT_CHECK(ids[i] < vocab_size_, "token shard '", files_[s], "': token ", first + i, " is ", ids[i],
               ", expected ids below the vocabulary size ", vocab_size_);
      out[pos - start + i] = ids[i];
    }
    pos += n;
  }
}

}  // namespace mt
