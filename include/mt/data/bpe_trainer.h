// Learns byte-level BPE merges from text, GPT-2 style: pieces from GPT-2's pre-tokenizer are counted
// once, then the most frequent adjacent pair is merged repeatedly, with pair counts updated
// incrementally and a lazy max-heap picking the next pair (ties: the smaller (left, right) ids).
// Vocabulary: 256 byte tokens (id = byte value), the merges, then <|endoftext|> (see tokenizer.h).
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "mt/data/tokenizer.h"

namespace mt {

// vocab_size counts the bytes, the merges and <|endoftext|>, so it must be >= 257. Training stops
// early (a smaller vocabulary) when no adjacent pair is left to merge.
Tokenizer train_bpe(const std::vector<std::string>& files, int32_t vocab_size);
Tokenizer train_bpe_on_text(std::string_view text, int32_t vocab_size);

}  // namespace mt
