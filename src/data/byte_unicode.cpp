// GPT-2's byte <-> printable code point bijection (openai/gpt-2 encoder.py, bytes_to_unicode).
#include "mt/data/byte_unicode.h"

#include "mt/core/error.h"
#include "mt/data/utf8.h"

namespace mt {
namespace {

bool is_printable_latin1(int b) { return (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF); }

struct ByteMaps {
  std::array<char32_t, 256> to_unicode{};
  std::array<unsigned char, 256> order{};
  ByteMaps() {
    int n = 0;
    for (int b = 0; b < 256; ++b)
      if (is_printable_latin1(b)) order[n++] = static_cast<unsigned char>(b), to_unicode[b] = static_cast<char32_t>(b);
    int extra = 0;
    for (int b = 0; b < 256; ++b)
      if (!is_printable_latin1(b)) order[n++] = static_cast<unsigned char>(b), to_unicode[b] = 256 + extra++;
  }
};

const ByteMaps& maps() {
  static const ByteMaps m;
  return m;
}

// Inverse lookup: code points are < 256 + 68, so a flat table covers them.
int unicode_to_byte(char32_t cp) {
  static const auto table = [] {
    std::array<int, 512> t;
    t.fill(-1);
    for (int b = 0; b < 256; ++b) t[maps().to_unicode[b]] = b;
    return t;
  }();
  return cp < table.size() ? table[cp] : -1;
}

}  // namespace

const std::array<char32_t, 256>& byte_to_unicode_table() { return maps().to_unicode; }

const std::array<unsigned char, 256>& gpt2_byte_order() { return maps().order; }

std::string bytes_to_unicode_text(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (char c : bytes) append_utf8(out, maps().to_unicode[static_cast<unsigned char>(c)]);
  return out;
}

std::string unicode_text_to_bytes(std::string_view text, std::string_view where) {
  std::string out;
  out.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const DecodedCodePoint d = decode_utf8(text, pos);
    const int b = d.cp == kInvalidCodePoint ? -1 : unicode_to_byte(d.cp);
    MT_CHECK(b >= 0, where, ": expected a token in GPT-2's unicode-byte form, got '", text,
             "' (invalid character at byte ", pos, ")");
    out.push_back(static_cast<char>(b));
    pos += d.length;
  }
  return out;
}

}  // namespace mt
