// Whole-file reads and writes for the data layer's small files (text, tokenizers, shards).
// Errors name the path and the system's reason.
#pragma once
#include <string>
#include <string_view>

namespace mt {

std::string read_file_bytes(const std::string& path);
void write_file_bytes(const std::string& path, std::string_view bytes);

}  // namespace mt
