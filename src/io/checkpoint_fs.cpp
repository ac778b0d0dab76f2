// POSIX fsync/rename for durable checkpoint commits. std::filesystem has no fsync, hence open(2).
#include "mt/io/checkpoint_fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "mt/core/error.h"

namespace mt {
namespace {

void fsync_path(const std::filesystem::path& p, int flags, const char* what) {
  int fd = ::open(p.c_str(), flags | O_CLOEXEC);
  MT_CHECK(fd >= 0, "cannot open ", what, " ", p.string(), " to fsync it: ", std::strerror(errno));
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  MT_CHECK(rc == 0, "fsync of ", what, " ", p.string(), " failed: ", std::strerror(err));
}

}  // namespace

void durable_rename(const std::filesystem::path& tmp, const std::filesystem::path& final_path) {
  fsync_path(tmp, O_RDONLY, "file");
  MT_CHECK(::rename(tmp.c_str(), final_path.c_str()) == 0, "cannot rename ", tmp.string(), " to ",
           final_path.string(), ": ", std::strerror(errno));
  std::filesystem::path dir = final_path.parent_path();
  fsync_path(dir.empty() ? std::filesystem::path(".") : dir, O_RDONLY | O_DIRECTORY, "directory");
}

void write_file_durably(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  MT_CHECK(fd >= 0, "cannot create ", tmp.string(), ": ", std::strerror(errno));
  size_t done = 0;
  while (done < text.size()) {
    ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      ::close(fd);
      ::unlink(tmp.c_str());
      MT_FAIL("cannot write ", tmp.string(), ": ", std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  MT_CHECK(::close(fd) == 0, "cannot close ", tmp.string(), ": ", std::strerror(errno));
  try {
    durable_rename(tmp, path);
  } catch (...) {
    ::unlink(tmp.c_str());
    throw;
  }
}

}  // namespace mt
