// Reads GPT-2's BPE files: encoder.json (a JSON object token -> id, read by mt/io/json.h) and vocab.bpe
// ("#version" line, then one merge "left right" per line). Tokens in both are in GPT-2's unicode-byte
// form. GPT-2's ids follow the canonical layout of tokenizer.h, which is checked, not assumed.
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "mt/core/error.h"
#include "mt/data/byte_unicode.h"
#include "mt/data/file_bytes.h"
#include "mt/data/tokenizer.h"
#include "mt/io/json.h"

namespace mt {
namespace {

// encoder.json: one JSON object, token (GPT-2's unicode-byte form) -> id, ids non-negative integers.
std::unordered_map<std::string, int64_t> read_encoder_json(const std::string& path) {
  const std::string text = read_file_bytes(path);
  JsonValue json;
  try {
    json = parse_json(text);
  } catch (const JsonError& e) {
    MT_FAIL(path, ":", e.line(), ":", e.column(), ": ", e.reason());
  }
  MT_CHECK(json.kind == JsonValue::Kind::kObject, path, ": expected a JSON object {token: id, ...}, got ",
           json_kind_name(json.kind));
  std::unordered_map<std::string, int64_t> encoder;  // raw token bytes -> id
  for (const auto& [token, id] : json.members) {
    const bool integer = id.kind == JsonValue::Kind::kNumber && id.number >= 0 && id.number < (1u << 31) &&
                         id.number == std::floor(id.number);
    MT_CHECK(integer, path, ": token ", json_quote(token), ": expected a non-negative integer id, got ",
             id.kind == JsonValue::Kind::kNumber ? str_cat(id.number) : json_kind_name(id.kind));
    encoder.emplace(unicode_text_to_bytes(token, path), static_cast<int64_t>(id.number));
  }
  return encoder;
}

}  // namespace

Tokenizer Tokenizer::load_gpt2(const std::string& encoder_json_path, const std::string& vocab_bpe_path) {
  const std::unordered_map<std::string, int64_t> encoder = read_encoder_json(encoder_json_path);  // raw bytes -> id
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
