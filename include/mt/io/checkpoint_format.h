// The names and type mapping of Note [Checkpoint format] (checkpoint.h), shared by the writer,
// the reader and the tests that build deliberately malformed files.
#pragma once
#include <hdf5.h>

#include <cstdint>
#include <string>

#include "mt/core/dtype.h"

namespace mt::ckpt {

inline constexpr const char* kFormatName = "moetrain-checkpoint";
inline constexpr const char* kTensorGroup = "tensors";
inline constexpr const char* kMetaGroup = "meta";
// Root attributes.
inline constexpr const char* kFormatAttr = "format";
inline constexpr const char* kVersionAttr = "format_version";
inline constexpr const char* kCompleteAttr = "complete";
inline constexpr const char* kChecksumAttr = "checksum";
// Per-dataset attributes.
inline constexpr const char* kDTypeAttr = "dtype";
inline constexpr const char* kCrcAttr = "crc32";

// The stored (little-endian) and in-memory HDF5 types of a dtype; predefined ids, never closed.
hid_t file_type(DType t);
hid_t mem_type(DType t);

// Tensor names and metadata keys: '.'-separated non-empty segments of [A-Za-z0-9_-].
// Throws naming `what` ("tensor", "metadata key") and the name.
void check_name(const std::string& name, const char* what);

// Folds one dataset into the root checksum: "<group>/<name>\0" then its crc32, little-endian.
uint32_t fold_entry(uint32_t global, const char* group, const std::string& name, uint32_t crc);

}  // namespace mt::ckpt
