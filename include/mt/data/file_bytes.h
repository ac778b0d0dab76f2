// Whole-file reads and writes for the data layer's small files (text, tokenizers, shards).
// Errors name the path and the system's reason; a directory, FIFO or device is refused before it
// is opened (opening a FIFO would block, and a directory's "size" is no size).
#pragma once
#include <string>
#include <string_view>

namespace mt {

// Throws naming `what` (e.g. "token shard") and the path unless `path` is an existing regular file
// (symbolic links are followed).
void check_regular_file(const std::string& path, std::string_view what);

std::string read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, std::string_view bytes);

}  // namespace mt
