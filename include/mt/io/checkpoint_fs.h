// Durable file replacement for checkpoints and the `latest` pointer: fsync the new file, rename it
// over the final name, fsync the directory, so after a crash the final name holds the old file or
// the whole new one, never a torn one.
#pragma once
#include <filesystem>
#include <string>

namespace mt {

// fsync(tmp); rename(tmp, final_path); fsync(parent directory). Errors name both paths.
void durable_rename(const std::filesystem::path& tmp, const std::filesystem::path& final_path);

// Writes `text` to `path + ".tmp"`, then durable_rename()s it to `path`.
void write_file_durably(const std::filesystem::path& path, const std::string& text);

}  // namespace mt
