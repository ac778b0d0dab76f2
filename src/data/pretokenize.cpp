// The GPT-2 pre-tokenization pattern as a hand-written scanner (see pretokenize.h).
// Alternatives are tried in the regex's order at each position, exactly like a backtracking engine.
#include "mt/data/pretokenize.h"

#include "mt/data/unicode_classes.h"
#include "mt/data/utf8.h"

namespace mt {
namespace {

enum class CharClass { kLetter, kNumber, kSpace, kOther };

CharClass classify(char32_t cp) {
  if (cp == kInvalidCodePoint) return CharClass::kOther;
  if (is_unicode_letter(cp)) return CharClass::kLetter;
  if (is_unicode_number(cp)) return CharClass::kNumber;
  if (is_unicode_space(cp)) return CharClass::kSpace;
  return CharClass::kOther;
}

// Length in bytes of the contraction ('s 't 're 've 'm 'll 'd) at text[pos], or 0.
size_t contraction_length(std::string_view text, size_t pos) {
  if (text[pos] != '\'' || pos + 1 >= text.size()) return 0;
  const char c1 = text[pos + 1];
  if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return 2;
  if (pos + 2 >= text.size()) return 0;
  const char c2 = text[pos + 2];
  if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return 3;
  return 0;
}

}  // namespace

std::vector<std::string_view> pretokenize(std::string_view text) {
  std::vector<std::string_view> pieces;
  pieces.reserve(text.size() / 4 + 1);
  // Returns the end of the run of `cls` characters starting at pos.
  const auto run_end = [&](size_t pos, CharClass cls) {
    while (pos < text.size()) {
      const DecodedCodePoint d = decode_utf8(text, pos);
      if (classify(d.cp) != cls) break;
      pos += d.length;
    }
    return pos;
  };
  size_t pos = 0;
  while (pos < text.size()) {
    if (const size_t n = contraction_length(text, pos)) {
      pieces.push_back(text.substr(pos, n));
      pos += n;
      continue;
    }
    const DecodedCodePoint first = decode_utf8(text, pos);
    CharClass cls = classify(first.cp);
    size_t body = pos;  // where the letter/number/other run starts (after an optional leading ' ')
    if (first.cp == ' ' && pos + 1 < text.size()) {
      const CharClass next = classify(decode_utf8(text, pos + 1).cp);
      if (next != CharClass::kSpace) cls = next, body = pos + 1;
    }
    if (cls != CharClass::kSpace) {  // ' ?\p{L}+', ' ?\p{N}+' or ' ?[^\s\p{L}\p{N}]+'
      const size_t end = run_end(body, cls);
      pieces.push_back(text.substr(pos, end - pos));
      pos = end;
      continue;
    }
    // '\s+(?!\S)': the whole space run at the end of text, else the run minus its last character
    // (which then starts the next piece, e.g. " word"); '\s+' when that leaves nothing.
    size_t end = pos;
    size_t last_start = pos;
    while (end < text.size()) {
      const DecodedCodePoint d = decode_utf8(text, end);
      if (classify(d.cp) != CharClass::kSpace) break;
      last_start = end;
      end += d.length;
    }
    if (end < text.size() && last_start > pos) end = last_start;
    pieces.push_back(text.substr(pos, end - pos));
    pos = end;
  }
  return pieces;
}

}  // namespace mt
