// CRC-32 used by checkpoints: the standard check value, zlib-style chaining, and agreement with a
// bit-at-a-time reference over many lengths and alignments.
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "mt/io/checkpoint_crc32.h"

namespace {

uint32_t crc32_bitwise(const unsigned char* p, size_t n) {
  uint32_t c = 0xffffffffu;
  for (size_t i = 0; i < n; ++i) {
    c ^= p[i];
    for (int k = 0; k < 8; ++k) c = (c & 1u) ? (c >> 1) ^ 0xEDB88320u : c >> 1;
  }
  return ~c;
}

TEST(CheckpointCrc32, StandardCheckValues) {
  const std::string s = "123456789";
  EXPECT_EQ(mt::checkpoint_crc32(s.data(), s.size()), 0xCBF43926u);
  EXPECT_EQ(mt::checkpoint_crc32(nullptr, 0), 0u);
  const std::string fox = "The quick brown fox jumps over the lazy dog";
  EXPECT_EQ(mt::checkpoint_crc32(fox.data(), fox.size()), 0x414FA339u);
}

TEST(CheckpointCrc32, MatchesBitwiseReferenceAtEveryLengthAndOffset) {
  std::mt19937 rng(7);
  std::vector<unsigned char> buf(300);
  for (auto& b : buf) b = static_cast<unsigned char>(rng());
  for (size_t off = 0; off < 8; ++off)
    for (size_t n = 0; n + off <= buf.size(); n += 7)
      ASSERT_EQ(mt::checkpoint_crc32(buf.data() + off, n), crc32_bitwise(buf.data() + off, n)) << off << " " << n;
}

TEST(CheckpointCrc32, ChainsLikeZlib) {
  std::vector<unsigned char> buf(1000);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<unsigned char>(i * 31 + 7);
  const uint32_t whole = mt::checkpoint_crc32(buf.data(), buf.size());
  for (size_t cut : {0, 1, 8, 13, 500, 999, 1000})
    EXPECT_EQ(mt::checkpoint_crc32(buf.data() + cut, buf.size() - cut, mt::checkpoint_crc32(buf.data(), cut)), whole)
        << cut;
}

}  // namespace
