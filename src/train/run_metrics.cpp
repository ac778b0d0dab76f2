// RunMetrics: a small strict parser for flat JSON objects, one per line, and the series `compare`
// needs (training throughput, eval loss, MoE drop rate) pulled out of a run's metrics.jsonl.
#include "mt/train/run_metrics.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>

#include "mt/core/error.h"

namespace mt {

const JsonScalar* JsonLine::find(const std::string& key) const {
  for (const auto& [k, v] : fields)
    if (k == key) return &v;
  return nullptr;
}

namespace {

// A syntax error inside one line, without a source location; the caller adds file:line.
class JsonSyntaxError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// A cursor over one line; every error names the 1-based column.
class JsonCursor {
 public:
  explicit JsonCursor(const std::string& text) : s_(text) {}

  void skip_space() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r' || s_[i_] == '\n')) ++i_;
  }
  bool at_end() const { return i_ >= s_.size(); }
  char peek() const { return at_end() ? '\0' : s_[i_]; }
  void expect(char c, const char* what) {
    skip_space();
    if (peek() != c) fail(what);
    ++i_;
  }
  [[noreturn]] void fail(const std::string& what) const {
    std::string got = at_end() ? "end of line" : str_cat("'", s_[i_], "'");
    throw JsonSyntaxError(str_cat("column ", i_ + 1, ": expected ", what, ", got ", got));
  }

  std::string parse_string() {
    expect('"', "'\"' to open a string");
    std::string out;
    while (true) {
      if (at_end()) fail("'\"' to close the string");
      char c = s_[i_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) {
        --i_;
        fail("a control character escaped (\\n, \\u0001, ...)");
      }
      if (c != '\\') {
        out += c;
        continue;
      }
      char e = peek();
      ++i_;
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': append_utf8(parse_code_point(), out); break;
        default: --i_; fail("an escape (\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)");
      }
    }
  }

  JsonScalar parse_value() {
    skip_space();
    JsonScalar v;
    char c = peek();
    if (c == '"') {
      v.kind = JsonScalar::Kind::kString;
      v.text = parse_string();
    } else if (s_.compare(i_, 4, "null") == 0) {
      v.kind = JsonScalar::Kind::kNull;
      i_ += 4;
    } else if (c == '-' || (c >= '0' && c <= '9')) {
      v.kind = JsonScalar::Kind::kNumber;
      v.number = parse_number();
    } else if (c == '{' || c == '[') {
      fail("a number, string or null (metrics lines are flat objects)");
    } else {
      fail("a number, string or null");
    }
    return v;
  }

 private:
  // JSON's number grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
  double parse_number() {
    size_t start = i_;
    auto digits = [&] {
      size_t d = i_;
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
    std::string text = s_.substr(start, i_ - start);
    errno = 0;
    double x = std::strtod(text.c_str(), nullptr);
    if (errno == ERANGE && std::isinf(x)) {
      i_ = start;
      fail("a number within double range");
    }
    return x;
  }

  uint32_t parse_hex4() {
    uint32_t cp = 0;
    for (int k = 0; k < 4; ++k) {
      char h = peek();
      int d = h >= '0' && h <= '9'   ? h - '0'
              : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                     : -1;
      if (d < 0) fail("4 hex digits after \\u");
      cp = cp * 16 + static_cast<uint32_t>(d);
      ++i_;
    }
    return cp;
  }

  // \uXXXX, joining a UTF-16 surrogate pair into one code point.
  uint32_t parse_code_point() {
    uint32_t cp = parse_hex4();
    if (cp >= 0xDC00 && cp <= 0xDFFF) fail("a high surrogate before a low one");
    if (cp < 0xD800 || cp > 0xDBFF) return cp;
    if (s_.compare(i_, 2, "\\u") != 0) fail("\\u with the low surrogate after a high one");
    i_ += 2;
    uint32_t lo = parse_hex4();
    if (lo < 0xDC00 || lo > 0xDFFF) fail("a low surrogate (\\uDC00..\\uDFFF)");
    return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
  }

  static void append_utf8(uint32_t cp, std::string& out) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  const std::string& s_;
  size_t i_ = 0;
};

bool blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// Note [Resumed runs repeat steps]: a run resumed from a checkpoint appends the steps after that
// checkpoint again, so a series may step backwards. The later lines win: points at or after the
// new step are dropped before it is added, leaving each series in increasing step order.
template <typename Point>
void push_in_step_order(std::vector<Point>& series, const Point& p) {
  while (!series.empty() && series.back().step >= p.step) series.pop_back();
  series.push_back(p);
}

std::vector<std::pair<std::string, JsonScalar>> parse_object(const std::string& text) {
  JsonCursor c(text);
  std::vector<std::pair<std::string, JsonScalar>> fields;
  c.expect('{', "'{' to open an object");
  c.skip_space();
  if (c.peek() == '}') {
    c.expect('}', "'}'");
  } else {
    while (true) {
      c.skip_space();
      std::string key = c.parse_string();
      for (const auto& f : fields)
        if (f.first == key) throw JsonSyntaxError(str_cat("duplicate key \"", key, "\""));
      c.expect(':', "':' after a key");
      fields.emplace_back(std::move(key), c.parse_value());
      c.skip_space();
      if (c.peek() == ',') {
        c.expect(',', "','");
        continue;
      }
      c.expect('}', "',' or '}' after a value");
      break;
    }
  }
  c.skip_space();
  if (!c.at_end()) c.fail("end of line after the object");
  return fields;
}

}  // namespace

std::vector<std::pair<std::string, JsonScalar>> parse_flat_json_object(const std::string& text) {
  try {
    return parse_object(text);
  } catch (const JsonSyntaxError& e) {
    MT_FAIL(e.what());
  }
}

std::vector<JsonLine> read_json_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in.good(), "cannot open ", path, ": ", std::strerror(errno));
  std::vector<JsonLine> lines;
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (blank(text)) continue;
    JsonLine line;
    line.line = number;
    try {
      line.fields = parse_object(text);
    } catch (const JsonSyntaxError& e) {
      MT_FAIL(path, ":", number, ": malformed JSON line: ", e.what());
    }
    lines.push_back(std::move(line));
  }
  MT_CHECK(!in.bad(), "error reading ", path);
  return lines;
}

RunMetrics read_run_metrics(const std::string& path) {
  RunMetrics m;
  for (const JsonLine& line : read_json_lines(path)) {
    const std::string where = str_cat(path, ":", line.line);
    auto number = [&](const char* key) -> std::optional<double> {
      const JsonScalar* v = line.find(key);
      if (!v) return std::nullopt;
      MT_CHECK(v->kind != JsonScalar::Kind::kString, where, ": \"", key,
               "\": expected a number or null, got the string \"", v->text, "\"");
      return v->kind == JsonScalar::Kind::kNull ? std::numeric_limits<double>::quiet_NaN() : v->number;
    };
    auto required = [&](const char* key, const char* kind) {
      std::optional<double> v = number(key);
      MT_CHECK(v.has_value(), where, ": ", kind, " line without \"", key, "\"");
      return *v;
    };
    std::optional<double> step = number("step");
    MT_CHECK(step.has_value() && std::isfinite(*step), where, ": expected a numeric \"step\" in every line");
    const auto s = static_cast<int64_t>(*step);
    if (std::optional<double> loss = number("loss"))
      push_in_step_order(m.train,
                         TrainPoint{s, required("tokens", "training"), *loss, required("tokens_per_s", "training")});
    if (std::optional<double> vl = number("val_loss"))
      push_in_step_order(m.eval, EvalPoint{s, required("tokens", "eval"), *vl});
    if (std::optional<double> dr = number("drop_rate")) push_in_step_order(m.drops, DropPoint{s, *dr});
  }
  return m;
}

RunSummary summarize(const RunMetrics& m) {
  RunSummary r;
  if (!m.train.empty()) {
    r.steps = m.train.back().step;
    std::vector<double> tps;
    for (const TrainPoint& p : m.train)
      if (std::isfinite(p.tokens_per_s)) tps.push_back(p.tokens_per_s);
    if (!tps.empty()) {
      std::sort(tps.begin(), tps.end());
      size_t n = tps.size();
      r.median_tokens_per_s = n % 2 ? tps[n / 2] : 0.5 * (tps[n / 2 - 1] + tps[n / 2]);
    }
  }
  if (!m.eval.empty()) {
    r.final_val_loss = m.eval.back().val_loss;
    for (const EvalPoint& p : m.eval)
      if (std::isfinite(p.val_loss) && (!r.best_val_loss || p.val_loss < *r.best_val_loss))
        r.best_val_loss = p.val_loss;
  }
  if (!m.drops.empty()) r.last_drop_rate = m.drops.back().drop_rate;
  return r;
}

}  // namespace mt
