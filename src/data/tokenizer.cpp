// Byte-level BPE: construction from merges, encode (heap of candidate merges per piece), decode,
// and the moetrain-bpe text format. GPT-2's files are read in gpt2_files.cpp.
#include "mt/data/tokenizer.h"

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <queue>
#include <sstream>

#include "mt/core/error.h"
#include "mt/data/byte_unicode.h"
#include "mt/data/file_bytes.h"
#include "mt/data/pretokenize.h"

namespace mt {
namespace {

constexpr std::string_view kFormatLine = "#moetrain-bpe v1";
// More merges than any tokenizer needs; it bounds the header's counts (no overflow, no huge allocation).
constexpr int64_t kMaxMerges = 1 << 24;

uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

// One line of a moetrain-bpe file, split on single spaces, with its 1-based line number.
struct Line {
  int number;
  std::vector<std::string_view> fields;
};

int64_t parse_int(std::string_view s, const std::string& where) {
  int64_t v = 0;
  const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  MT_CHECK(ec == std::errc() && end == s.data() + s.size(), where, ": expected an integer, got '", s, "'");
  return v;
}

}  // namespace

Tokenizer::Tokenizer(ByteOrder byte_order, std::vector<std::pair<int32_t, int32_t>> merges)
    : byte_order_(byte_order), merges_(std::move(merges)) {
  vocab_.resize(256 + merges_.size() + 1);
  for (int i = 0; i < 256; ++i) {
    const unsigned char b = byte_order_ == ByteOrder::kIdentity ? static_cast<unsigned char>(i) : gpt2_byte_order()[i];
    byte_ids_[b] = i;
    vocab_[i] = std::string(1, static_cast<char>(b));
  }
  merge_rank_.reserve(merges_.size());
  for (size_t r = 0; r < merges_.size(); ++r) {
    const auto [left, right] = merges_[r];
    const int32_t id = static_cast<int32_t>(256 + r);
    MT_CHECK(left >= 0 && left < id && right >= 0 && right < id, "BPE merge ", r, ": expected token ids below ", id,
             " (tokens that exist before it), got (", left, ", ", right, ")");
    MT_CHECK(merge_rank_.emplace(pair_key(left, right), static_cast<int32_t>(r)).second, "BPE merge ", r,
             ": the pair (", left, ", ", right, ") is already merged by an earlier rank");
    vocab_[id] = vocab_[left] + vocab_[right];
  }
  vocab_.back() = std::string(kEndOfText);
}

const std::string& Tokenizer::token_bytes(int32_t id) const {
  MT_CHECK(id >= 0 && id < vocab_size(), "token id ", id, " is out of range [0, ", vocab_size(), ")");
  return vocab_[id];
}

// Merges by rank, leftmost first, on a linked list of symbols with a heap of candidate pairs:
// the same result as GPT-2's repeated "merge every occurrence of the lowest-rank pair", because a
// merge only creates pairs that involve the new token, whose ranks are higher than its own.
void Tokenizer::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  const int n = static_cast<int>(piece.size());
  std::vector<int32_t> id(n), next(n), prev(n);
  for (int i = 0; i < n; ++i) {
    id[i] = byte_ids_[static_cast<unsigned char>(piece[i])];
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  struct Candidate {
    int32_t rank, left, right, left_id, right_id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : left > o.left; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> heap;
  const auto push_pair = [&](int left) {
    const int right = next[left];
    if (right >= n) return;
    const auto it = merge_rank_.find(pair_key(id[left], id[right]));
    if (it != merge_rank_.end()) heap.push({it->second, left, right, id[left], id[right]});
  };
  for (int i = 0; i + 1 < n; ++i) push_pair(i);
  std::vector<char> alive(n, 1);
  while (!heap.empty()) {
    const Candidate c = heap.top();
    heap.pop();
    if (!alive[c.left] || !alive[c.right] || next[c.left] != c.right || id[c.left] != c.left_id ||
        id[c.right] != c.right_id)
      continue;  // stale: a neighbour merged since this candidate was pushed
    id[c.left] = 256 + c.rank;
    alive[c.right] = 0;
    next[c.left] = next[c.right];
    if (next[c.right] < n) prev[next[c.right]] = c.left;
    if (prev[c.left] >= 0) push_pair(prev[c.left]);
    push_pair(c.left);
  }
  for (int i = 0; i < n; i = next[i]) out.push_back(id[i]);
}

std::vector<int32_t> Tokenizer::encode(std::string_view text) const {
  std::vector<int32_t> out;
  out.reserve(text.size() / 3 + 1);
  // Pieces repeat a lot (words); reuse the ids of an earlier occurrence in this text.
  std::unordered_map<std::string_view, std::pair<size_t, size_t>> seen;
  for (std::string_view piece : pretokenize(text)) {
    const auto it = seen.find(piece);
    if (it != seen.end()) {
      for (size_t k = 0; k < it->second.second; ++k) {
        const int32_t v = out[it->second.first + k];
        out.push_back(v);
      }
      continue;
    }
    const size_t start = out.size();
    encode_piece(piece, out);
    seen.emplace(piece, std::make_pair(start, out.size() - start));
  }
  return out;
}

std::string Tokenizer::decode(std::span<const int32_t> ids) const {
  std::string text;
  for (int32_t id : ids) text += token_bytes(id);
  return text;
}

void Tokenizer::save(const std::string& path) const {
  std::ostringstream os;
  os << kFormatLine << "\nvocab_size " << vocab_size() << "\neot_id " << eot_id() << "\nbyte_order "
     << (byte_order_ == ByteOrder::kIdentity ? "identity" : "gpt2") << "\nmerges " << merges_.size() << "\n";
  for (size_t r = 0; r < merges_.size(); ++r)
    os << merges_[r].first << ' ' << merges_[r].second << ' ' << bytes_to_unicode_text(vocab_[256 + r]) << '\n';
  write_file_bytes(path, os.str());
}

Tokenizer Tokenizer::load(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(path, ec)) {
    check_regular_file(path, "tokenizer");
    return load_moetrain_bpe(path);
  }
  const std::string encoder = (fs::path(path) / "encoder.json").string();
  const std::string vocab = (fs::path(path) / "vocab.bpe").string();
  for (const std::string& file : {encoder, vocab})
    MT_CHECK(fs::exists(file, ec), "tokenizer folder '", path,
             "': expected GPT-2's encoder.json and vocab.bpe in it (scripts/fetch-gpt2-bpe.sh fetches them), but '",
             file, "' is missing");
  return load_gpt2(encoder, vocab);
}

Tokenizer Tokenizer::load_moetrain_bpe(const std::string& path) {
  const std::string text = read_file_bytes(path);
  std::vector<Line> lines;
  for (size_t pos = 0, number = 1; pos < text.size(); ++number) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    Line line{static_cast<int>(number), {}};
    const std::string_view s = std::string_view(text).substr(pos, end - pos);
    for (size_t f = 0; f <= s.size();) {
      size_t g = s.find(' ', f);
      if (g == std::string_view::npos) g = s.size();
      line.fields.push_back(s.substr(f, g - f));
      f = g + 1;
    }
    lines.push_back(std::move(line));
    pos = end + 1;
  }
  const auto where = [&](int number) { return str_cat(path, ":", number); };
  MT_CHECK(!lines.empty() && text.substr(0, text.find('\n')) == kFormatLine, where(1),
           ": not a moetrain BPE file: expected the first line '", kFormatLine, "', got ",
           text.empty() ? "an empty file" : str_cat("'", text.substr(0, std::min<size_t>(text.find('\n'), 40)), "'"));
  // Header: "key value" lines in a fixed order.
  const auto header = [&](size_t index, std::string_view key) {
    const int number = static_cast<int>(index) + 1;
    MT_CHECK(index < lines.size() && lines[index].fields.size() == 2 && lines[index].fields[0] == key, where(number),
             ": expected '", key, " <value>'", index < lines.size() ? "" : " (the file ends before it: truncated?)");
    return lines[index].fields[1];
  };
  const int64_t vocab_size = parse_int(header(1, "vocab_size"), where(2));
  const int64_t eot_id = parse_int(header(2, "eot_id"), where(3));
  const std::string_view order = header(3, "byte_order");
  MT_CHECK(order == "identity" || order == "gpt2", where(4), ": expected byte_order identity or gpt2, got '", order,
           "'");
  const int64_t num_merges = parse_int(header(4, "merges"), where(5));
  MT_CHECK(num_merges >= 0 && num_merges <= kMaxMerges, where(5), ": expected merges in [0, ", kMaxMerges, "], got ",
           num_merges);
  MT_CHECK(vocab_size == 257 + num_merges && eot_id == vocab_size - 1, where(2),
           ": inconsistent header: vocab_size ", vocab_size, ", eot_id ", eot_id, ", merges ", num_merges,
           " (expected vocab_size = 257 + merges, eot_id = vocab_size - 1)");
  const size_t first = 5;
  MT_CHECK(lines.size() == first + num_merges, where(static_cast<int>(std::min<size_t>(lines.size(), first + num_merges) + 1)),
           ": expected ", num_merges, " merge lines after the header (lines 6..", first + num_merges, "), got ",
           lines.size() - first, lines.size() < first + num_merges ? " (truncated?)" : "");
  std::vector<std::pair<int32_t, int32_t>> merges;
  merges.reserve(num_merges);
  std::unordered_map<uint64_t, int> line_of_pair;  // for a duplicate merge's message
  for (int64_t r = 0; r < num_merges; ++r) {
    const Line& line = lines[first + r];
    MT_CHECK(line.fields.size() == 3, where(line.number), ": expected '<left id> <right id> <merged token>'");
    const int64_t left = parse_int(line.fields[0], where(line.number));
    const int64_t right = parse_int(line.fields[1], where(line.number));
    MT_CHECK(left >= 0 && right >= 0 && left < 256 + r && right < 256 + r, where(line.number),
             ": expected token ids below ", 256 + r, ", got ", left, " ", right);
    const auto [seen, fresh] = line_of_pair.emplace(pair_key(left, right), line.number);
    MT_CHECK(fresh, where(line.number), ": duplicate merge ", left, " ", right, ": the pair is already merged at line ",
             seen->second);
    merges.emplace_back(static_cast<int32_t>(left), static_cast<int32_t>(right));
  }
  Tokenizer tok(order == "identity" ? ByteOrder::kIdentity : ByteOrder::kGpt2, std::move(merges));
  for (int64_t r = 0; r < num_merges; ++r) {
    const Line& line = lines[first + r];
    MT_CHECK(line.fields[2] == bytes_to_unicode_text(tok.vocab_[256 + r]), where(line.number),
             ": merged token '", line.fields[2], "' does not match its ids (",
             bytes_to_unicode_text(tok.vocab_[256 + r]), ")");
  }
  return tok;
}

}  // namespace mt
