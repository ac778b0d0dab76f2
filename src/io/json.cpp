// The JSON reader (a recursive-descent parser over the text, every error naming its byte offset,
// line and column) and json_quote.
#include "mt/io/json.h"

#include <charconv>
#include <cstdio>
#include <unordered_set>

#include "mt/data/utf8.h"

namespace mt {

const JsonValue* JsonValue::find(std::string_view key) const {
  for (const auto& [k, v] : members)
    if (k == key) return &v;
  return nullptr;
}

const char* json_kind_name(JsonValue::Kind kind) {
  switch (kind) {
    case JsonValue::Kind::kNull: return "null";
    case JsonValue::Kind::kBool: return "a boolean";
    case JsonValue::Kind::kNumber: return "a number";
    case JsonValue::Kind::kString: return "a string";
    case JsonValue::Kind::kArray: return "an array";
    case JsonValue::Kind::kObject: return "an object";
  }
  MT_ASSERT(false);
}

JsonError::JsonError(std::string reason, size_t offset, int line, int column)
    : Error(str_cat("line ", line, ", column ", column, ": ", reason)),
      reason_(std::move(reason)),
      offset_(offset),
      line_(line),
      column_(column) {}

namespace {

class JsonParser {
 public:
  explicit JsonParser(std::string_view text) : s_(text) {}

  JsonValue parse_document() {
    JsonValue v = parse_value(0);
    skip_space();
    if (!at_end()) fail("the end of the text after the value");
    return v;
  }

 private:
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }

  [[noreturn]] void fail(const std::string& expected) const {
    const auto c = static_cast<unsigned char>(peek());
    const std::string got = at_end()               ? "the end of the text"
                            : c < 0x20 || c >= 0x7f ? str_cat("byte 0x", hex(c, 2))
                                                    : str_cat("'", s_[i_], "'");
    fail_at(i_, str_cat("expected ", expected, ", got ", got));
  }
  [[noreturn]] void fail_at(size_t offset, std::string reason) const {
    int line = 1;
    size_t line_start = 0;
    for (size_t k = 0; k < offset && k < s_.size(); ++k)
      if (s_[k] == '\n') ++line, line_start = k + 1;
    throw JsonError(std::move(reason), offset, line, static_cast<int>(offset - line_start) + 1);
  }

  void expect(char c, const char* what) {
    skip_space();
    if (peek() != c) fail(what);
    ++i_;
  }

  JsonValue parse_value(int depth) {
    skip_space();
    JsonValue v;
    const char c = peek();
    if (c == '{' || c == '[') {
      if (depth >= kJsonMaxDepth) fail_at(i_, str_cat("nesting deeper than ", kJsonMaxDepth, " arrays and objects"));
      if (c == '{') parse_object(v, depth + 1);
      else parse_array(v, depth + 1);
    } else if (c == '"') {
      v.kind = JsonValue::Kind::kString;
      v.text = parse_string();
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = JsonValue::Kind::kNumber;
      v.number = parse_number();
    } else if (s_.substr(i_, 4) == "true" || s_.substr(i_, 5) == "false") {
      v.kind = JsonValue::Kind::kBool;
      v.boolean = c == 't';
      i_ += v.boolean ? 4 : 5;
    } else if (s_.substr(i_, 4) == "null") {
      i_ += 4;
    } else {
      fail("a JSON value ('{', '[', '\"', a number, true, false or null)");
    }
    return v;
  }

  void parse_object(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::kObject;
    std::unordered_set<std::string> keys;
    expect('{', "'{'");
    skip_space();
    if (peek() == '}') {
      ++i_;
      return;
    }
    while (true) {
      skip_space();
      const size_t key_at = i_;
      std::string key = parse_string();
      if (!keys.insert(key).second) fail_at(key_at, str_cat("duplicate key \"", key, "\""));
      expect(':', "':' after a key");
      JsonValue member = parse_value(depth);
      v.members.emplace_back(std::move(key), std::move(member));
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect('}', "',' or '}' after a member");
      return;
    }
  }

  void parse_array(JsonValue& v, int depth) {
    v.kind = JsonValue::Kind::kArray;
    expect('[', "'['");
    skip_space();
    if (peek() == ']') {
      ++i_;
      return;
    }
    while (true) {
      v.items.push_back(parse_value(depth));
      skip_space();
      if (peek() == ',') {
        ++i_;
        continue;
      }
      expect(']', "',' or ']' after an item");
      return;
    }
  }

  std::string parse_string() {
    if (peek() != '"') fail("'\"' to open a string");
    ++i_;
    std::string out;
    while (true) {
      if (at_end()) fail("'\"' to close the string");
      const char c = s_[i_];
      if (c == '"') {
        ++i_;
        return out;
      }
      if (static_cast<unsigned char>(c) < 0x20) fail("a control character escaped (\\n, \\u0001, ...)");
      ++i_;
      if (c != '\\') {
        out += c;
        continue;
      }
      switch (peek()) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u':
          ++i_;
          append_utf8(out, parse_code_point());
          continue;
        default: fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      }
      ++i_;
    }
  }

  // JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  double parse_number() {
    const size_t start = i_;
    auto digits = [&] {
      const size_t d = i_;
      while (i_ < s_.size() && s_[i_] >= '0' && s_[i_] <= '9') ++i_;
      return i_ - d;
    };
    if (peek() == '-') ++i_;
    if (peek() == '0') {
      ++i_;
    } else if (digits() == 0) {
      fail("a digit");
    }
    if (peek() == '.') {
      ++i_;
      if (digits() == 0) fail("a digit after '.'");
    }
    if (peek() == 'e' || peek() == 'E') {
      ++i_;
      if (peek() == '+' || peek() == '-') ++i_;
      if (digits() == 0) fail("a digit in the exponent");
    }
    double x = 0;
    // from_chars: locale-independent and correctly rounded. Out of range it leaves x alone: a
    // number too tiny for a double (1e-400) is read as 0, one too large is an error.
    const auto [end, ec] = std::from_chars(s_.data() + start, s_.data() + i_, x);
    if (ec == std::errc::result_out_of_range) {
      if (!underflows(start)) fail_at(start, "expected a number within double range");
      x = s_[start] == '-' ? -0.0 : 0.0;
    } else {
      MT_ASSERT(ec == std::errc() && end == s_.data() + i_);
    }
    return x;
  }

  // The number text at `start` (valid JSON) has a negative exponent, so it is tiny, not huge.
  bool underflows(size_t start) const {
    const std::string_view t = s_.substr(start, i_ - start);
    const size_t e = t.find_first_of("eE");
    return e != std::string_view::npos && e + 1 < t.size() && t[e + 1] == '-';
  }

  uint32_t parse_hex4() {
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      const char h = peek();
      const int d = h >= '0' && h <= '9'   ? h - '0'
                    : h >= 'a' && h <= 'f' ? h - 'a' + 10
                    : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                           : -1;
      if (d < 0) fail("4 hex digits after \\u");
      cp = cp * 16 + static_cast<uint32_t>(d);
      ++i_;
    }
    return cp;
  }

  // After "\u": XXXX, joining a UTF-16 surrogate pair into one code point.
  uint32_t parse_code_point() {
    const size_t at = i_ - 2;
    const uint32_t cp = parse_hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail_at(at, "expected a high surrogate before a low one, got a lone \\u" + hex(cp, 4));
    if (cp < 0xD800 || cp > 0xDBFF) return cp;
    if (s_.substr(i_, 2) != "\\u") fail("\\u with the low surrogate after a high one");
    i_ += 2;
    const uint32_t lo = parse_hex4();
    if (lo < 0xDC00 || lo > 0xDFFF) fail_at(i_ - 6, "expected a low surrogate (\\uDC00..\\uDFFF), got \\u" + hex(lo, 4));
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }

  static std::string hex(uint32_t v, int digits) {
    char buf[16];
    std::snprintf(buf, sizeof(buf), "%0*X", digits, v);
    return buf;
  }

  std::string_view s_;
  size_t i_ = 0;
};

}  // namespace

JsonValue parse_json(std::string_view text) { return JsonParser(text).parse_document(); }

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  for (const char c : s) {
    const auto u = static_cast<unsigned char>(c);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (u < 0x20 || u == 0x7f) {
          char buf[8];
          std::snprintf(buf, sizeof(buf), "\\u%04x", u);
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

}  // namespace mt
