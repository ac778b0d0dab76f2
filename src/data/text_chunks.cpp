// TextChunker: buffered reads, document ends at "<|endoftext|>" and file ends, safe cuts in between
// (Note [Where text may be cut] in the header).
#include "mt/data/text_chunks.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/data/tokenizer.h"

namespace mt {
namespace {

bool visible_ascii(char c) { return c >= 0x21 && c <= 0x7e; }

// The last cut point p in (lo, hi] with text[p - 1] a newline between two visible ASCII characters,
// or 0 when there is none; text[hi] must exist.
size_t last_safe_cut(const std::string& text, size_t lo, size_t hi) {
  for (size_t p = hi; p > lo + 1; --p) {
    const size_t nl = text.rfind('\n', p - 1);
    if (nl == std::string::npos || nl <= lo) return 0;
    p = nl + 1;
    if (visible_ascii(text[nl - 1]) && visible_ascii(text[p])) return p;
  }
  return 0;
}

}  // namespace

TextChunker::TextChunker(std::vector<std::string> files, int64_t chunk_bytes)
    : files_(std::move(files)), chunk_bytes_(chunk_bytes) {
  MT_CHECK(chunk_bytes_ >= 1, "tokenize: expected a chunk size >= 1 byte, got ", chunk_bytes_);
  for (const std::string& path : files_) {
    check_regular_file(path, "file");
    bytes_total_ += static_cast<int64_t>(std::filesystem::file_size(path));
  }
}

bool TextChunker::fill(size_t want) {
  if (pos_ > 0 && pos_ >= buf_.size() / 2) {  // drop what was handed out
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  while (open_ && buf_.size() - pos_ < want) {
    const size_t old = buf_.size(), block = std::max<size_t>(want - (old - pos_), 1 << 16);
    buf_.resize(old + block);
    in_.read(buf_.data() + old, static_cast<std::streamsize>(block));
    const std::streamsize got = in_.gcount();
    buf_.resize(old + static_cast<size_t>(got));
    bytes_read_ += got;
    if (got < static_cast<std::streamsize>(block)) {
      MT_CHECK(!in_.bad(), "cannot read '", files_[file_ - 1], "': ", std::strerror(errno));
      in_.close();
      open_ = false;
    }
  }
  return buf_.size() - pos_ >= want;
}

// Hands out buf_[pos_, end) as a piece of the current document, if it is not empty.
void TextChunker::emit_piece(size_t end, TextChunk& out, bool& emitted) {
  if (end > pos_) {
    out.text.assign(buf_, pos_, end - pos_);
    out.opens_document = !in_document_;
    in_document_ = true;
    emitted = true;
  }
  pos_ = end;
}

bool TextChunker::next(TextChunk& out) {
  const size_t chunk = static_cast<size_t>(chunk_bytes_);
  size_t want = chunk + kEndOfText.size();
  for (;;) {
    if (!open_ && pos_ == buf_.size()) {  // the previous file is used up
      if (file_ == files_.size()) return false;
      in_ = std::ifstream(files_[file_], std::ios::binary);
      MT_CHECK(in_, "cannot open '", files_[file_], "' for reading: ", std::strerror(errno));
      ++file_;
      open_ = true;
      buf_.clear();
      pos_ = 0;
      in_document_ = false;
    }
    const bool full = fill(want);
    bool emitted = false;
    const size_t marker = buf_.find(kEndOfText, pos_);
    if (marker != std::string::npos) {  // the document ends at the marker
      emit_piece(marker, out, emitted);
      pos_ += kEndOfText.size();
      in_document_ = false;
    } else if (!full) {  // the file ends the document
      emit_piece(buf_.size(), out, emitted);
      in_document_ = false;
    } else if (size_t cut = last_safe_cut(buf_, pos_, std::min(pos_ + chunk, buf_.size() - kEndOfText.size()))) {
      emit_piece(cut, out, emitted);
    } else {
      want += chunk;  // no safe cut yet: read on
      continue;
    }
    if (emitted) return true;
    want = chunk + kEndOfText.size();
  }
}

}  // namespace mt
