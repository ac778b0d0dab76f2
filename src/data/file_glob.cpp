// File pattern expansion through POSIX glob(3).
#include "mt/data/file_glob.h"

#include <glob.h>

#include <filesystem>

#include "mt/core/error.h"

namespace mt {
namespace {

// Why a pattern may match nothing, when its folder part is the reason.
std::string folder_hint(const std::string& pattern) {
  const std::filesystem::path folder = std::filesystem::path(pattern).parent_path();
  std::error_code ec;
  if (folder.empty() || folder.string().find_first_of("*?[") != std::string::npos) return "";
  if (!std::filesystem::exists(folder, ec)) return str_cat(" (the folder '", folder.string(), "' does not exist)");
  if (!std::filesystem::is_directory(folder, ec)) return str_cat(" ('", folder.string(), "' is not a folder)");
  return "";
}

}  // namespace

std::vector<std::string> expand_file_patterns(const std::vector<std::string>& patterns) {
  std::vector<std::string> paths;
  for (const std::string& pattern : patterns) {
    glob_t g{};
    const int rc = glob(pattern.c_str(), 0, nullptr, &g);  // an unreadable folder matches nothing
    if (rc == 0)
      for (size_t i = 0; i < g.gl_pathc; ++i) paths.emplace_back(g.gl_pathv[i]);
    globfree(&g);
    MT_CHECK(rc != GLOB_NOMATCH, "no file matches '", pattern, "'", folder_hint(pattern));
    MT_CHECK(rc == 0, "cannot expand '", pattern, "': ", rc == GLOB_ABORTED ? "read error" : "out of memory");
  }
  return paths;
}

}  // namespace mt
