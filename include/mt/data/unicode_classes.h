// Code point classes used by the GPT-2 pre-tokenizer: \p{L} (letter), \p{N} (number) and \s (space).
// The tables are generated from node's regex engine (scripts/gen-unicode-classes.js), so they agree
// with the JavaScript reference encoder for every code point of its Unicode version.
#pragma once

namespace mt {

bool is_unicode_letter(char32_t cp);
bool is_unicode_number(char32_t cp);
// JavaScript's \s: \t \n \v \f \r, space, U+00A0, U+1680, U+2000-200A, U+2028-2029, U+202F, U+205F,
// U+3000, U+FEFF. (Python's \s also has U+0085; GPT-2's original regex ran in Python.)
bool is_unicode_space(char32_t cp);

}  // namespace mt
