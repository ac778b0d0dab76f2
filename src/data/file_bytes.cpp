// Whole-file reads and writes with errors that name the path.
#include "mt/data/file_bytes.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include "mt/core/error.h"

namespace mt {
namespace {

const char* file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

}  // namespace

void check_regular_file(const std::string& path, std::string_view what) {
  struct stat st {};
  MT_CHECK(::stat(path.c_str(), &st) == 0, "cannot open ", what, " '", path, "': ", std::strerror(errno));
  MT_CHECK(S_ISREG(st.st_mode), what, " '", path, "': expected a regular file, got ", file_kind(st.st_mode));
}

std::string read_file_bytes(const std::string& path) {
  check_regular_file(path, "file");
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot open '", path, "' for reading: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  MT_CHECK(size >= 0, "cannot read '", path, "': cannot tell its size");
  std::string bytes(static_cast<size_t>(size), '\0');
  in.seekg(0);
  in.read(bytes.data(), size);
  MT_CHECK(in.gcount() == size, "cannot read '", path, "': expected ", size, " bytes, got ", in.gcount());
  return bytes;
}

void write_file_bytes(const std::string& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  MT_CHECK(out, "cannot open '", path, "' for writing: ", std::strerror(errno));
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  out.flush();
  MT_CHECK(out, "cannot write '", path, "': ", std::strerror(errno));
}

}  // namespace mt
