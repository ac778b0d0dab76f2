// TextChunker: text files read as a stream of chunks of about `chunk_bytes`, cut only where
// tokenizing the pieces apart gives the tokens of the whole, so chunks can be encoded in parallel
// and concatenated. Memory is O(chunk_bytes) unless a document has no safe cut for that long.
//
// Documents are as tokenize_to_shards defines them (shard_writer.h): each file, split further at
// every literal "<|endoftext|>"; empty ones are skipped. A chunk is a non-empty piece of one document.
//
// Note [Where text may be cut]: GPT-2's pre-tokenizer (pretokenize.h) never lets a piece cross a
// newline that has a visible ASCII character (0x21-0x7e) on both sides: the character before ends
// its piece (no class of it takes whitespace), the newline cannot join the next piece (only a
// literal space may prefix one) nor, followed by a non-space, extend into a longer space run. So a
// cut right after such a newline leaves every piece, and so every token, as it was.
#pragma once
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

namespace mt {

struct TextChunk {
  std::string text;
  bool opens_document = false;  // the first piece of its document (the EOT token goes before it)
};

class TextChunker {
 public:
  TextChunker(std::vector<std::string> files, int64_t chunk_bytes);

  // The next chunk in input order; false when the inputs are used up.
  bool next(TextChunk& out);

  int64_t bytes_read() const { return bytes_read_; }
  int64_t bytes_total() const { return bytes_total_; }

 private:
  bool fill(size_t want);  // reads until buf_ holds `want` bytes after pos_ or the file ends
  void emit_piece(size_t end, TextChunk& out, bool& emitted);

  std::vector<std::string> files_;
  int64_t chunk_bytes_;
  size_t file_ = 0;  // the next file to open
  std::ifstream in_;
  bool open_ = false;
  std::string buf_;
  size_t pos_ = 0;            // unread text starts here
  bool in_document_ = false;  // a piece of the current document was already emitted
  int64_t bytes_read_ = 0, bytes_total_ = 0;
};

}  // namespace mt
