// Whole-file reads and writes with errors that name the path.
#include "mt/data/file_bytes.h"

#include <cerrno>
#include <cstring>
#include <fstream>

#include "mt/core/error.h"

namespace mt {

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in, "cannot open '", path, "' for reading: ", std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff size = in.tellg();
  MT_CHECK(size >= 0, "cannot read '", path, "': not a regular file");
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
