// JSON reader and quoter: every kind of value, nesting, escapes (UTF-16 pairs to UTF-8), numbers
// at their limits, each kind of syntax error with its offset, line and column, and quoting that
// reads back.
#include "mt/io/json.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

namespace mt {
namespace {

using Kind = JsonValue::Kind;

// The JsonError that parsing `text` throws; fails the test when it throws none.
JsonError error_of(const std::string& text) {
  try {
    parse_json(text);
  } catch (const JsonError& e) {
    return e;
  }
  ADD_FAILURE() << "no error for " << text;
  return JsonError("", 0, 0, 0);
}

TEST(Json, ParsesScalars) {
  EXPECT_EQ(parse_json("null").kind, Kind::kNull);
  EXPECT_EQ(parse_json(" true ").kind, Kind::kBool);
  EXPECT_TRUE(parse_json("true").boolean);
  EXPECT_FALSE(parse_json("false").boolean);
  EXPECT_EQ(parse_json("\"a b\"").text, "a b");
  EXPECT_EQ(parse_json("\"\"").kind, Kind::kString);
}

TEST(Json, ParsesNumbersExactly) {
  const std::vector<std::pair<std::string, double>> cases = {
      {"0", 0.0},         {"-0", -0.0},       {"10", 10.0},        {"-2.5e-1", -0.25},
      {"0.001", 0.001},   {"1E3", 1000.0},    {"1e+2", 100.0},     {"50256", 50256.0},
      {"0.1", 0.1},       {"123456789.125", 123456789.125},          {"1.7976931348623157e308", 1.7976931348623157e308},
      {"5e-324", 5e-324}, {"1e-400", 0.0},    {"-1e-400", -0.0},
  };
  for (const auto& [text, value] : cases) {
    SCOPED_TRACE(text);
    JsonValue v = parse_json(text);
    EXPECT_EQ(v.kind, Kind::kNumber);
    EXPECT_EQ(v.number, value);
    EXPECT_EQ(std::signbit(v.number), std::signbit(value));
  }
}

TEST(Json, ParsesNestedObjectsAndArrays) {
  JsonValue v = parse_json(R"( {"a": [1, [2, {}], {"b": null}], "c": {"d": {"e": [true, "x"]}}, "f": []} )");
  ASSERT_EQ(v.kind, Kind::kObject);
  ASSERT_EQ(v.members.size(), 3u);
  EXPECT_EQ(v.members[0].first, "a");
  EXPECT_EQ(v.members[1].first, "c");
  EXPECT_EQ(v.members[2].first, "f");
  const JsonValue& a = *v.find("a");
  ASSERT_EQ(a.kind, Kind::kArray);
  ASSERT_EQ(a.items.size(), 3u);
  EXPECT_EQ(a.items[0].number, 1);
  ASSERT_EQ(a.items[1].items.size(), 2u);
  EXPECT_EQ(a.items[1].items[0].number, 2);
  EXPECT_EQ(a.items[1].items[1].kind, Kind::kObject);
  EXPECT_TRUE(a.items[1].items[1].members.empty());
  EXPECT_EQ(a.items[2].find("b")->kind, Kind::kNull);
  const JsonValue& e = *v.find("c")->find("d")->find("e");
  ASSERT_EQ(e.items.size(), 2u);
  EXPECT_TRUE(e.items[0].boolean);
  EXPECT_EQ(e.items[1].text, "x");
  EXPECT_EQ(v.find("f")->kind, Kind::kArray);
  EXPECT_TRUE(v.find("f")->items.empty());
  EXPECT_EQ(v.find("nope"), nullptr);
  EXPECT_EQ(parse_json("[]").kind, Kind::kArray);
}

TEST(Json, DecodesEscapesAndUnicode) {
  // Named escapes, \u below and above 0x80, a surrogate pair (U+1F600), raw UTF-8 kept as it is.
  EXPECT_EQ(parse_json(R"("q\"b\\s\/n\nt\tr\rb\bf\f")").text, "q\"b\\s/n\nt\tr\rb\bf\f");
  EXPECT_EQ(parse_json(R"("\u0041\u00e9\u20AC\ud83d\ude00\u0000")").text,
            std::string("A\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80\0", 11));
  EXPECT_EQ(parse_json("\"\xC4\xA0the\"").text, "\xC4\xA0the");  // GPT-2's "Ġthe"
}

TEST(Json, ErrorsNameWhatAndWhere) {
  struct Case {
    std::string text, reason;
    size_t offset;
    int line, column;
  };
  const std::vector<Case> cases = {
      {R"({"a": 1,})", "expected '\"' to open a string, got '}'", 8, 1, 9},
      {R"({"a" 1})", "expected ':' after a key, got '1'", 5, 1, 6},
      {R"({"a": 1 "b": 2})", "expected ',' or '}' after a member, got '\"'", 8, 1, 9},
      {"[1 2]", "expected ',' or ']' after an item, got '2'", 3, 1, 4},
      {"[1,]", "expected a JSON value", 3, 1, 4},
      {"{\"a\": 1,\n \"a\": 2}", "duplicate key \"a\"", 10, 2, 2},
      {"01", "expected the end of the text after the value, got '1'", 1, 1, 2},
      {"1.", "expected a digit after '.', got the end of the text", 2, 1, 3},
      {"1e+", "expected a digit in the exponent", 3, 1, 4},
      {"-x", "expected a digit, got 'x'", 1, 1, 2},
      {"NaN", "expected a JSON value", 0, 1, 1},
      {"tru", "expected a JSON value", 0, 1, 1},
      {"[1e999]", "expected a number within double range", 1, 1, 2},
      {"\"x", "expected '\"' to close the string, got the end of the text", 2, 1, 3},
      {"\"a\nb\"", "expected a control character escaped (\\n, \\u0001, ...), got byte 0x0A", 2, 1, 3},
      {R"("\q")", "expected an escape", 2, 1, 3},
      {R"("\u12G4")", "expected 4 hex digits after \\u, got 'G'", 5, 1, 6},
      {R"("\ud83d")", "expected \\u with the low surrogate after a high one", 7, 1, 8},
      {R"("\ud83d\u0041")", "expected a low surrogate (\\uDC00..\\uDFFF), got \\u0041", 7, 1, 8},
      {R"("ab\ude00")", "lone \\uDE00", 3, 1, 4},
      {"{\"a\": 1} x", "expected the end of the text after the value, got 'x'", 9, 1, 10},
      {"{\"a\":\n\n  [1,\n   }", "expected a JSON value", 16, 4, 4},
      {"", "expected a JSON value ('{', '[', '\"', a number, true, false or null), got the end of the text", 0, 1, 1},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.text);
    const JsonError e = error_of(c.text);
    EXPECT_NE(e.reason().find(c.reason), std::string::npos) << e.reason();
    EXPECT_EQ(e.offset(), c.offset);
    EXPECT_EQ(e.line(), c.line);
    EXPECT_EQ(e.column(), c.column);
    EXPECT_EQ(std::string(e.what()), "line " + std::to_string(c.line) + ", column " + std::to_string(c.column) +
                                         ": " + e.reason());
  }
}

TEST(Json, NestingIsBounded) {
  EXPECT_EQ(parse_json(std::string(kJsonMaxDepth, '[') + std::string(kJsonMaxDepth, ']')).kind, Kind::kArray);
  const JsonError e = error_of(std::string(kJsonMaxDepth + 1, '[') + std::string(kJsonMaxDepth + 1, ']'));
  EXPECT_NE(e.reason().find("nesting deeper than 256"), std::string::npos) << e.reason();
  EXPECT_EQ(e.offset(), static_cast<size_t>(kJsonMaxDepth));
}

TEST(Json, QuoteEscapesControlCharactersAsU00XX) {
  EXPECT_EQ(json_quote("plain"), "\"plain\"");
  EXPECT_EQ(json_quote("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(json_quote("\n\r\t"), R"("\n\r\t")");
  EXPECT_EQ(json_quote(std::string("\x01\x1f\b\f\x7f\0", 6)), R"("\u0001\u001f\u0008\u000c\u007f\u0000")");
  EXPECT_EQ(json_quote("\xC3\xA9/"), "\"\xC3\xA9/\"");  // UTF-8 and '/' as they are
}

TEST(Json, QuotedEveryByteReadsBack) {
  std::string all;
  for (int c = 1; c < 256; ++c) all += static_cast<char>(c);
  all += '\0';
  EXPECT_EQ(parse_json(json_quote(all)).text, all);
}

}  // namespace
}  // namespace mt
