// Recompute: which parts of each transformer block keep only their input in the forward and run again
// in the backward (train.recompute; Note [Recomputation] in src/nn/transformer_block.cpp).
#pragma once
#include <cstdint>

namespace mt {

enum class Recompute : uint8_t {
  kNone,       // every activation kept
  kAttention,  // the attention half (ln1, qkv, attention, proj, dropout) recomputed
  kBlock,      // the whole block recomputed: only the block inputs are kept
};

// The recipe's spelling: "none", "attention", "block".
inline const char* recompute_name(Recompute r) {
  return r == Recompute::kNone ? "none" : r == Recompute::kAttention ? "attention" : "block";
}

}  // namespace mt
