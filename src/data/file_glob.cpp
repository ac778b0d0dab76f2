// File pattern expansion through POSIX glob(3).
#include "mt/data/file_glob.h"

#include <glob.h>

#include "mt/core/error.h"

namespace mt {

std::vector<std::string> expand_file_patterns(const std::vector<std::string>& patterns) {
  std::vector<std::string> paths;
  for (const std::string& pattern : patterns) {
    glob_t g{};
    const int rc = glob(pattern.c_str(), GLOB_ERR, nullptr, &g);
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    MT_CHECK(rc != GLOB_NOMATCH, "no file matches '", pattern, "'");
    MT_CHECK(rc == 0, "cannot expand '", pattern, "': ", rc == GLOB_ABORTED ? "read error" : "out of memory");
  }
  return paths;
}

}  // namespace mt
