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

}  // namespace mt
