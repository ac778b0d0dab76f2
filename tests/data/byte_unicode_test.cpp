// GPT-2's byte <-> unicode map and byte order.
#include "mt/data/byte_unicode.h"

#include <gtest/gtest.h>

#include <set>

#include "mt/core/error.h"

namespace mt {
namespace {

TEST(ByteUnicode, MapsLikeGpt2) {
  const auto& table = byte_to_unicode_table();
  EXPECT_EQ(table['A'], U'A');
  EXPECT_EQ(table[0xE9], U'é');
  EXPECT_EQ(table[0], U'\u0100');
  EXPECT_EQ(table[' '], U'\u0120');   // "Ġ"
  EXPECT_EQ(table['\n'], U'\u010A');  // "Ċ"
  EXPECT_EQ(table[0xAD], U'\u0143');  // soft hyphen, the last unprintable byte
  EXPECT_EQ(bytes_to_unicode_text(" the\n"), "ĠtheĊ");
}

TEST(ByteUnicode, IsABijection) {
  std::string all;
  for (int b = 0; b < 256; ++b) all.push_back(static_cast<char>(b));
  EXPECT_EQ(unicode_text_to_bytes(bytes_to_unicode_text(all), "test"), all);
  std::set<char32_t> images(byte_to_unicode_table().begin(), byte_to_unicode_table().end());
  EXPECT_EQ(images.size(), 256u);
}

TEST(ByteUnicode, Gpt2OrderStartsWithPrintables) {
  const auto& order = gpt2_byte_order();
  EXPECT_EQ(order[0], '!');
  EXPECT_EQ(order[93], '~');
  EXPECT_EQ(order[94], 0xA1);
  EXPECT_EQ(order[188], 0);  // the 68 unprintable bytes follow, in byte order
  EXPECT_EQ(order[255], 0xAD);
}

TEST(ByteUnicode, RejectsCharactersOutsideTheMap) {
  try {
    unicode_text_to_bytes("ab\u4E00", "vocab.bpe:7");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("vocab.bpe:7"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace mt
