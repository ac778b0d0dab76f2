// GPT-2 pre-tokenizer: splits compared with what the regex gives in node (the reference encoder's engine).
#include "mt/data/pretokenize.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mt/data/unicode_classes.h"

namespace mt {
namespace {

std::vector<std::string> split(std::string_view text) {
  std::vector<std::string> out;
  for (std::string_view p : pretokenize(text)) out.emplace_back(p);
  return out;
}

using Pieces = std::vector<std::string>;

TEST(Pretokenize, MatchesGpt2RegexOnAsciiCases) {
  // Expected pieces: node's String.matchAll with GPT-2's pattern.
  EXPECT_EQ(split("Hello world"), (Pieces{"Hello", " world"}));
  EXPECT_EQ(split("it's they'll I'M we'd"), (Pieces{"it", "'s", " they", "'ll", " I", "'", "M", " we", "'d"}));
  EXPECT_EQ(split("a   b"), (Pieces{"a", "  ", " b"}));
  EXPECT_EQ(split("end  "), (Pieces{"end", "  "}));
  EXPECT_EQ(split(" \n\nx"), (Pieces{" \n", "\n", "x"}));
  EXPECT_EQ(split("x \ny"), (Pieces{"x", " ", "\n", "y"}));
  EXPECT_EQ(split("'sfoo ''s !'s"), (Pieces{"'s", "foo", " ''", "s", " !'", "s"}));
  EXPECT_EQ(split("3.14159 and 42nd"), (Pieces{"3", ".", "14159", " and", " 42", "nd"}));
  EXPECT_EQ(split("a\tb  \t c"), (Pieces{"a", "\t", "b", "  \t", " c"}));
  EXPECT_EQ(split("tab\t\tend\n"), (Pieces{"tab", "\t", "\t", "end", "\n"}));
  EXPECT_EQ(split("e-mail@x.com (#42)?"), (Pieces{"e", "-", "mail", "@", "x", ".", "com", " (#", "42", ")?"}));
  EXPECT_EQ(split("  leading"), (Pieces{" ", " leading"}));
  EXPECT_TRUE(split("").empty());
}

TEST(Pretokenize, MatchesGpt2RegexOnUnicodeCases) {
  EXPECT_EQ(split("Naïve café 日本語 Ελληνικά"), (Pieces{"Naïve", " café", " 日本語", " Ελληνικά"}));
  EXPECT_EQ(split("x ²³ y"), (Pieces{"x", " ²³", " y"}));  // superscripts are \p{N}
  EXPECT_EQ(split("a\u00A0b"), (Pieces{"a", "\u00A0", "b"}));  // no-break space is \s
}

TEST(Pretokenize, InvalidUtf8BytesAreOtherCharacters) {
  const std::string text = "ab\xff\xfe cd \x80";
  EXPECT_EQ(split(text), (Pieces{"ab", "\xff\xfe", " cd", " \x80"}));
}

TEST(Pretokenize, PiecesCoverTheText) {
  const std::string text = "One  two\n\n three's 4,5 -- ÿ\xc3(\r\n  ";
  std::string joined;
  for (std::string_view p : pretokenize(text)) {
    EXPECT_FALSE(p.empty());
    joined += p;
  }
  EXPECT_EQ(joined, text);
}

TEST(UnicodeClasses, AgreeWithNodeOnSampleCodePoints) {
  EXPECT_TRUE(is_unicode_letter(U'é'));
  EXPECT_TRUE(is_unicode_letter(U'Ж'));
  EXPECT_TRUE(is_unicode_letter(U'語'));
  EXPECT_FALSE(is_unicode_letter(U'€'));
  EXPECT_FALSE(is_unicode_letter(U'5'));
  EXPECT_TRUE(is_unicode_number(U'٣'));  // Arabic-Indic three
  EXPECT_TRUE(is_unicode_number(U'½'));
  EXPECT_FALSE(is_unicode_number(U'x'));
  EXPECT_TRUE(is_unicode_space(U'\u3000'));
  EXPECT_TRUE(is_unicode_space(U'\uFEFF'));
  EXPECT_FALSE(is_unicode_space(U'\u0085'));  // JavaScript's \s leaves out NEL
  EXPECT_FALSE(is_unicode_space(U'_'));
}

}  // namespace
}  // namespace mt
