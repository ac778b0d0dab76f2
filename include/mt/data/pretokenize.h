// GPT-2's pre-tokenizer, hand-written: splits text into the pieces that the regex
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// matches; BPE merges never cross a piece boundary. Letters, numbers and spaces are the exact
// classes of node's regex engine (see unicode_classes.h); a byte that is not valid UTF-8 counts as
// one "other" character (neither letter, number nor space). The pieces cover the text exactly.
#pragma once
#include <string_view>
#include <vector>

namespace mt {

std::vector<std::string_view> pretokenize(std::string_view text);

}  // namespace mt
