// GPT-2's bytes_to_unicode: a bijection from the 256 byte values to printable code points, so that
// byte-level tokens can be written as readable text ("Ġthe" is " the"). Printable Latin-1 bytes
// ('!'..'~', '¡'..'¬', '®'..'ÿ') map to themselves; the other 68 bytes map to U+0100.. in order.
#pragma once
#include <array>
#include <string>
#include <string_view>

namespace mt {

// byte value -> code point.
const std::array<char32_t, 256>& byte_to_unicode_table();

// GPT-2's order of the 256 bytes: its token ids 0..255 are these bytes, in this order.
const std::array<unsigned char, 256>& gpt2_byte_order();

// Raw bytes -> their UTF-8 text in the unicode-byte form.
std::string bytes_to_unicode_text(std::string_view bytes);

// Inverse of bytes_to_unicode_text; throws mt::Error naming `where` when a code point is not in the map.
std::string unicode_text_to_bytes(std::string_view text, std::string_view where);

}  // namespace mt
