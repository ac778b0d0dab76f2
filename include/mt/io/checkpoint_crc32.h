// CRC-32 (the zlib / PNG / gzip polynomial) used for checkpoint checksums.
// Chainable like zlib's crc32(): checkpoint_crc32(b, nb, checkpoint_crc32(a, na)) == crc of a then b,
// so Python's zlib.crc32(dataset_bytes) gives the same value as the stored attribute.
#pragma once
#include <cstddef>
#include <cstdint>

namespace mt {

uint32_t checkpoint_crc32(const void* data, size_t bytes, uint32_t crc = 0);

}  // namespace mt
