// Reads GPT-2's BPE files: encoder.json (a flat JSON object token -> id, parsed here) and vocab.bpe
// ("#version" line, then one merge "left right" per line). Tokens in both are in GPT-2's unicode-byte
// form. GPT-2's ids follow the canonical layout of tokenizer.h, which is checked, not assumed.
#include <algorithm>
#include <unordered_map>

#include "mt/core/error.h"
#include "mt/data/byte_unicode.h"
#include "mt/data/file_bytes.h"
#include "mt/data/tokenizer.h"
#include "mt/data/utf8.h"

namespace mt {
namespace {

// A minimal parser for a JSON object whose values are all non-negative integers.
class FlatJsonParser {
 public:
  FlatJsonParser(const std::string& path, std::string_view text) : path_(path), text_(text) {}

  std::unordered_map<std::string, int64_t> parse_object() {
    std::unordered_map<std::string, int64_t> out;
    skip_space();
    expect('{');
    skip_space();
    if (peek() == '}') return ++pos_, out;
    while (true) {
      skip_space();
      std::string key = parse_string();
      skip_space();
      expect(':');
      skip_space();
      const int64_t value = parse_integer();
      MT_CHECK(out.emplace(key, value).second, where(), ": duplicate key '", key, "'");
      skip_space();
      if (peek() == ',') {
        ++pos_;
        continue;
      }
      expect('}');
      break;
    }
    skip_space();
    MT_CHECK(pos_ == text_.size(), where(), ": expected the end of the file after the object");
    return out;
  }

 private:
  std::string where() const {
    int line = 1;
    for (size_t i = 0; i < pos_ && i < text_.size(); ++i) line += text_[i] == '\n';
    return str_cat(path_, ":", line, " (byte ", pos_, ")");
  }
  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }
  void expect(char c) {
    MT_CHECK(peek() == c, where(), ": expected '", c, "'");
    ++pos_;
  }
  void skip_space() {
    while (pos_ < text_.size() && (text_[pos_] == ' ' || text_[pos_] == '\n' || text_[pos_] == '\r' || text_[pos_] == '\t'))
      ++pos_;
  }
  uint32_t parse_hex4() {
    MT_CHECK(pos_ + 4 <= text_.size(), where(), ": expected 4 hex digits after \\u");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = text_[pos_++];
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      MT_CHECK(d >= 0, where(), ": expected a hex digit in \\u escape, got '", c, "'");
      v = v * 16 + d;
    }
    return v;
  }
  std::string parse_string() {
    expect('"');
    std::string s;
    while (true) {
      MT_CHECK(pos_ < text_.size(), where(), ": unterminated string");
      const char c = text_[pos_++];
      if (c == '"') return s;
      if (c != '\\') {
        s.push_back(c);
        continue;
      }
      MT_CHECK(pos_ < text_.size(), where(), ": unterminated escape");
      const char e = text_[pos_++];
      switch (e) {
        case '"': case '\\': case '/': s.push_back(e); break;
        case 'b': s.push_back('\b'); break;
        case 'f': s.push_back('\f'); break;
        case 'n': s.push_back('\n'); break;
        case 'r': s.push_back('\r'); break;
        case 't': s.push_back('\t'); break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xD800 && cp <= 0xDBFF) {  // surrogate pair
            MT_CHECK(text_.substr(pos_, 2) == "\\u", where(), ": expected a low surrogate after \\u", cp);
            pos_ += 2;
            const uint32_t low = parse_hex4();
            MT_CHECK(low >= 0xDC00 && low <= 0xDFFF, where(), ": expected a low surrogate, got \\u", low);
            cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          }
          MT_CHECK(cp < 0xD800 || cp > 0xDFFF, where(), ": unpaired surrogate \\u", cp);
          append_utf8(s, cp);
          break;
        }
        default: MT_FAIL(where(), ": unknown escape '\\", e, "'");
      }
    }
  }
  int64_t parse_integer() {
    const size_t start = pos_;
    int64_t v = 0;
    while (pos_ < text_.size() && text_[pos_] >= '0' && text_[pos_] <= '9' && pos_ - start < 12)
      v = v * 10 + (text_[pos_++] - '0');
    MT_CHECK(pos_ > start, where(), ": expected a non-negative integer value");
    return v;
  }

  const std::string& path_;
  std::string_view text_;
  size_t pos_ = 0;
};

}  // namespace

Tokenizer Tokenizer::load_gpt2(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
  const std::string json = read_file_bytes(encoder_json_path);
  std::unordered_map<std::string, int64_t> encoder;  // raw token bytes -> id
  for (auto& [token, id] : FlatJsonParser(encoder_json_path, json).parse_object())
    encoder.emplace(unicode_text_to_bytes(token, encoder_json_path), id);
  const auto id_of = [&](const std::string& bytes, const std::string& where) {
    const auto it = encoder.find(bytes);
    MT_CHECK(it != encoder.end(), where, ": token '", bytes_to_unicode_text(bytes), "' is not in ", encoder_json_path);
    return it->second;
  };
  for (int i = 0; i < 256; ++i) {
    const std::string byte(1, static_cast<char>(gpt2_byte_order()[i]));
    MT_CHECK(id_of(byte, encoder_json_path) == i, encoder_json_path, ": byte token '", bytes_to_unicode_text(byte),
             "' has id ", id_of(byte, encoder_json_path), ", expected GPT-2's id ", i);
  }

  const std::string bpe = read_file_bytes(vocab_bpe_path);
  std::vector<std::pair<int32_t, int32_t>> merges;
  size_t pos = 0;
  int lines = 0;
  std::unordered_map<std::string, int> line_of_merge;  // "left right" -> line, for a duplicate's message
  for (int line = 1; pos < bpe.size(); ++line) {
    lines = line;
    size_t end = bpe.find('\n', pos);
    if (end == std::string::npos) end = bpe.size();
    std::string_view s = std::string_view(bpe).substr(pos, end - pos);
    pos = end + 1;
    if (!s.empty() && s.back() == '\r') s.remove_suffix(1);
    if (line == 1 && s.starts_with("#version")) continue;
    if (s.empty()) continue;
    const std::string where = str_cat(vocab_bpe_path, ":", line);
    const size_t space = s.find(' ');
    MT_CHECK(space != std::string_view::npos && s.find(' ', space + 1) == std::string_view::npos, where,
             ": expected '<left> <right>', got '", s, "'");
    const std::string left = unicode_text_to_bytes(s.substr(0, space), where);
    const std::string right = unicode_text_to_bytes(s.substr(space + 1), where);
    const auto [seen, fresh] = line_of_merge.emplace(std::string(s), line);
    MT_CHECK(fresh, where, ": duplicate merge '", s, "': already at line ", seen->second);
    const int64_t merged = id_of(left + right, where);
    MT_CHECK(merged == static_cast<int64_t>(256 + merges.size()), where, ": merge '", s, "' creates id ", merged,
             " in ", encoder_json_path, ", expected ", 256 + merges.size(), " (merge rank + 256)");
    merges.emplace_back(static_cast<int32_t>(id_of(left, where)), static_cast<int32_t>(id_of(right, where)));
  }
  const int64_t eot = id_of(std::string(kEndOfText), encoder_json_path);
  MT_CHECK(eot == static_cast<int64_t>(256 + merges.size()) && encoder.size() == 257 + merges.size(),
           vocab_bpe_path, ":", std::max(lines, 1), ": the file ends after ", merges.size(), " merges, but ", encoder_json_path,
           " has ", encoder.size(), " tokens with <|endoftext|> at id ", eot, " (expected 257 + merges tokens with ",
           "<|endoftext|> last; is one of the files truncated?)");
  return Tokenizer(ByteOrder::kGpt2, std::move(merges));
}

}  // namespace mt
