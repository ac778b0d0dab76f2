// JSON for the whole tree: one strict reader (RFC 8259: objects, arrays, strings, numbers, true,
// false, null) and one string quoter. metrics.jsonl, GPT-2's encoder.json and the quoted strings of
// an emitted recipe (YAML reads JSON's escapes) all go through here.
#pragma once
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mt/core/error.h"

namespace mt {

struct JsonValue {
  enum class Kind { kNull, kBool, kNumber, kString, kArray, kObject };
  Kind kind = Kind::kNull;
  bool boolean = false;                                    // kBool
  double number = 0.0;                                     // kNumber
  std::string text;                                        // kString (UTF-8)
  std::vector<JsonValue> items;                            // kArray
  std::vector<std::pair<std::string, JsonValue>> members;  // kObject: in text order, keys unique

  const JsonValue* find(std::string_view key) const;  // an object's member; nullptr when absent
  bool operator==(const JsonValue&) const = default;
};

const char* json_kind_name(JsonValue::Kind kind);  // "null", "a number", "an object", ...

// A syntax error. reason() says what was expected and what came ("expected ':' after a key, got
// '1'"); offset() is the 0-based byte where it happened, line() and column() the same 1-based
// (columns counted in bytes). what() is "line L, column C: <reason>"; callers add the file.
class JsonError : public Error {
 public:
  JsonError(std::string reason, size_t offset, int line, int column);
  const std::string& reason() const { return reason_; }
  size_t offset() const { return offset_; }
  int line() const { return line_; }
  int column() const { return column_; }

 private:
  std::string reason_;
  size_t offset_;
  int line_, column_;
};

// One JSON value with only whitespace around it. Throws JsonError on anything else: bad syntax, a
// duplicate key in an object, a number outside double range, a lone UTF-16 surrogate, nesting
// deeper than kJsonMaxDepth.
constexpr int kJsonMaxDepth = 256;
JsonValue parse_json(std::string_view text);

// `s` as a JSON string literal, quotes included: '"' and '\' escaped, \n \r \t by name, every other
// control character (below 0x20, and 0x7f) as \u00XX; other bytes (UTF-8) as they are.
std::string json_quote(std::string_view s);

}  // namespace mt
