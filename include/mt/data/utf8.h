// UTF-8 decoding and encoding of single code points, for the pre-tokenizer and the byte<->unicode map.
// Decoding never fails: a byte that does not start a valid sequence decodes as kInvalidCodePoint
// with length 1, so arbitrary bytes can be tokenized.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>

namespace mt {

inline constexpr char32_t kInvalidCodePoint = 0xFFFFFFFF;

struct DecodedCodePoint {
  char32_t cp;  // kInvalidCodePoint for a malformed sequence
  int length;   // bytes consumed, >= 1
};

// Decodes the code point starting at s[pos] (pos < s.size()).
DecodedCodePoint decode_utf8(std::string_view s, size_t pos);

// Appends the UTF-8 encoding of cp (cp <= 0x10FFFF).
void append_utf8(std::string& out, char32_t cp);

}  // namespace mt
