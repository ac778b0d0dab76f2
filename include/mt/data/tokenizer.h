// Byte-level BPE tokenizer, one class for the BPE that `moetrain data train-tokenizer` learns and for
// GPT-2's BPE. Text is split by GPT-2's pre-tokenizer (pretokenize.h), each piece starts as byte
// tokens and merges apply by rank (lowest first, leftmost first), exactly like GPT-2's encoder.py.
//
// Id layout (both kinds): ids 0..255 are the byte tokens, merge r creates id 256 + r, and the
// end-of-text token <|endoftext|> is the last id (256 + merges), so vocab_size = 257 + merges.
// Byte token ids are the byte values (ByteOrder::kIdentity, trained tokenizers) or GPT-2's order
// (ByteOrder::kGpt2: gpt2_byte_order(), which is how GPT-2's encoder.json numbers them).
// encode() treats the literal text "<|endoftext|>" as plain text, as GPT-2's encoder does; the EOT id
// is placed between documents by the shard writer.
//
// File format written by save() (UTF-8 text, '\n' line ends):
//   #moetrain-bpe v1
//   vocab_size <V>
//   eot_id <V-1>
//   byte_order identity|gpt2
//   merges <M>
//   <left id> <right id> <merged token>     M lines, in rank order
// The merged token is written in GPT-2's unicode-byte form (byte_unicode.h: "Ġt" is " t") for the
// reader's benefit, and checked on load. Merges are kept as ids because two merges may produce the
// same bytes (BPE segments a string differently in different words), which strings cannot tell apart.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

namespace mt {

enum class ByteOrder { kIdentity, kGpt2 };

class Tokenizer {
 public:
  // merges[r] = (left id, right id) of the merge that creates id 256 + r; both ids must be < 256 + r.
  Tokenizer(ByteOrder byte_order, std::vector<std::pair<int32_t, int32_t>> merges);

  // The one tokenizer loader of every command: `path` is a file written by save(), or a folder
  // holding GPT-2's encoder.json + vocab.bpe (load_gpt2). Anything else (missing, a FIFO, a device)
  // and every malformed line is an error naming the path and, inside a file, the line.
  static Tokenizer load(const std::string& path);
  // Reads GPT-2's encoder.json + vocab.bpe; the ids are GPT-2's (EOT 50256, vocab size 50257).
  static Tokenizer load_gpt2(const std::string& encoder_json_path, const std::string& vocab_bpe_path);
  void save(const std::string& path) const;

  std::vector<int32_t> encode(std::string_view text) const;
  // Concatenates the bytes of the tokens; EOT decodes as "<|endoftext|>".
  std::string decode(std::span<const int32_t> ids) const;

  int32_t vocab_size() const { return static_cast<int32_t>(vocab_.size()); }
  int32_t eot_id() const { return vocab_size() - 1; }
  ByteOrder byte_order() const { return byte_order_; }
  const std::vector<std::pair<int32_t, int32_t>>& merges() const { return merges_; }
  // The raw bytes of token `id`.
  const std::string& token_bytes(int32_t id) const;

 private:
  // Reads a file written by save().
  static Tokenizer load_moetrain_bpe(const std::string& path);
  // Appends the BPE ids of one pre-tokenized piece.
  void encode_piece(std::string_view piece, std::vector<int32_t>& out) const;

  ByteOrder byte_order_;
  std::vector<std::pair<int32_t, int32_t>> merges_;
  int32_t byte_ids_[256];
  std::vector<std::string> vocab_;  // id -> bytes
  std::unordered_map<uint64_t, int32_t> merge_rank_;  // (left << 32 | right) -> rank
};

inline constexpr std::string_view kEndOfText = "<|endoftext|>";

}  // namespace mt
