// BPE training: merges equal a from-scratch reference trainer, round trips, compression, and the
// moetrain-bpe file format (save/load identity, errors that name file:line).
#include "mt/data/bpe_trainer.h"

#include <gtest/gtest.h>

#include <map>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/data/pretokenize.h"
#include "temp_dir.h"

namespace mt {
namespace {

std::string kjv_excerpt() { return read_file_bytes(MT_TEST_DATA_DIR "/kjv_genesis_excerpt.txt"); }

// The textbook algorithm: recount every adjacent pair of every piece before each merge; pick the
// highest count, ties to the smallest (left, right); merge left to right.
std::vector<std::pair<int32_t, int32_t>> reference_merges(std::string_view text, int num_merges) {
  std::map<std::string, int64_t> counts;
  for (std::string_view p : pretokenize(text)) ++counts[std::string(p)];
  std::vector<std::pair<std::vector<int32_t>, int64_t>> words;
  for (const auto& [piece, n] : counts) {
    std::vector<int32_t> ids;
    for (char c : piece) ids.push_back(static_cast<unsigned char>(c));
    words.emplace_back(ids, n);
  }
  std::vector<std::pair<int32_t, int32_t>> merges;
  for (int m = 0; m < num_merges; ++m) {
    std::map<std::pair<int32_t, int32_t>, int64_t> pairs;
    for (const auto& [w, n] : words)
      for (size_t i = 0; i + 1 < w.size(); ++i) pairs[{w[i], w[i + 1]}] += n;
    if (pairs.empty()) break;
    auto best = pairs.begin();
    for (auto it = pairs.begin(); it != pairs.end(); ++it)
      if (it->second > best->second) best = it;
    merges.push_back(best->first);
    for (auto& [w, n] : words) {
      std::vector<int32_t> out;
      for (size_t i = 0; i < w.size();) {
        if (i + 1 < w.size() && std::make_pair(w[i], w[i + 1]) == best->first) {
          out.push_back(256 + m), i += 2;
        } else {
          out.push_back(w[i++]);
        }
      }
      w = out;
    }
  }
  return merges;
}

TEST(BpeTrainer, MergesEqualTheReferenceTrainer) {
  const std::string text = kjv_excerpt().substr(0, 12000);
  const Tokenizer tok = train_bpe_on_text(text, 257 + 300);
  EXPECT_EQ(tok.merges(), reference_merges(text, 300));
  EXPECT_EQ(tok.vocab_size(), 557);
  EXPECT_EQ(tok.eot_id(), 556);
  EXPECT_EQ(tok.token_bytes(256), " t");  // the most frequent pairs of this English text
  EXPECT_EQ(tok.token_bytes(257), "he");
}

TEST(BpeTrainer, RoundTripsAndCompresses) {
  const std::string text = kjv_excerpt();
  const Tokenizer tok = train_bpe_on_text(text, 1024);
  const std::vector<int32_t> ids = tok.encode(text);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_LT(ids.size() * 3, text.size()) << "expected > 3 bytes per token on the text it was trained on";
  // Text it has not seen, with bytes it never merged, still round-trips.
  const std::string other = "Zebra quizzes: \xff\x01 über 12345 — \t\n<|endoftext|>";
  EXPECT_EQ(tok.decode(tok.encode(other)), other);
}

TEST(BpeTrainer, TrainsOnFilesLikeOnTheirText) {
  testing::TempDir dir;
  const std::string text = kjv_excerpt();
  write_file_bytes(dir.file("a.txt"), text.substr(0, 20000));
  write_file_bytes(dir.file("b.txt"), text.substr(20000));
  const Tokenizer from_files = train_bpe({dir.file("a.txt"), dir.file("b.txt")}, 600);
  // Pieces never span files, so the counts differ from the joined text only at the cut.
  EXPECT_EQ(from_files.vocab_size(), 600);
  EXPECT_EQ(from_files.decode(from_files.encode(text)), text);
}

TEST(BpeTrainer, StopsWhenNoPairIsLeft) {
  const Tokenizer tok = train_bpe_on_text("abab ab", 1000);
  // Pieces "abab", " ab": merge (a,b) (3 times); then (' ',ab) and (ab,ab) tie at 1, the smaller
  // pair first; then every piece is one token.
  EXPECT_EQ(tok.merges(), (std::vector<std::pair<int32_t, int32_t>>{{'a', 'b'}, {' ', 256}, {256, 256}}));
  EXPECT_EQ(tok.vocab_size(), 257 + 3);
  EXPECT_EQ(tok.encode("abab ab"), (std::vector<int32_t>{258, 257}));
}

TEST(BpeTrainer, RejectsTooSmallVocab) { EXPECT_THROW(train_bpe_on_text("abc", 256), Error); }

TEST(TokenizerFile, SaveLoadGivesIdenticalTokenizer) {
  testing::TempDir dir;
  const std::string text = kjv_excerpt();
  const Tokenizer tok = train_bpe_on_text(text, 800);
  tok.save(dir.file("tok.bpe"));
  const Tokenizer loaded = Tokenizer::load(dir.file("tok.bpe"));
  EXPECT_EQ(loaded.merges(), tok.merges());
  EXPECT_EQ(loaded.vocab_size(), tok.vocab_size());
  EXPECT_EQ(loaded.eot_id(), tok.eot_id());
  EXPECT_EQ(loaded.encode(text), tok.encode(text));
  const std::string file = read_file_bytes(dir.file("tok.bpe"));
  EXPECT_EQ(file.substr(0, file.find("merges")),
            "#moetrain-bpe v1\nvocab_size 800\neot_id 799\nbyte_order identity\n");
}

void expect_load_error(const std::string& contents, const std::string& expected_where) {
  testing::TempDir dir;
  const std::string path = dir.file("bad.bpe");
  write_file_bytes(path, contents);
  try {
    Tokenizer::load(path);
    FAIL() << "expected an error for:\n" << contents;
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path + expected_where), std::string::npos) << e.what();
  }
}

TEST(TokenizerFile, LoadErrorsNameFileAndLine) {
  const std::string header = "#moetrain-bpe v1\nvocab_size 259\neot_id 258\nbyte_order identity\nmerges 2\n";
  expect_load_error("something else\n", ":1: not a moetrain BPE file");
  expect_load_error("", ":1: not a moetrain BPE file: expected the first line '#moetrain-bpe v1', got an empty file");
  expect_load_error(header + "116 104 th\n", ":7: expected 2 merge lines after the header (lines 6..7), got 1 (truncated?)");
  expect_load_error("#moetrain-bpe v1\nvocab_size 259\n", ":3: expected 'eot_id <value>' (the file ends before it");
  expect_load_error(header + "116 104 th\n116 104 th\n", ":7: duplicate merge 116 104: the pair is already merged at line 6");
  expect_load_error(header + "116 104\n256 32 thĠ\n", ":6: expected '<left id> <right id> <merged token>'");
  expect_load_error("#moetrain-bpe v1\nvocab_size 1\neot_id 0\nbyte_order gpt2\nmerges 9223372036854775807\n",
                    ":5: expected merges in [0, 16777216], got 9223372036854775807");
  expect_load_error(header + "116 104 th\n256 300 x\n", ":7: expected token ids below 257");
  expect_load_error(header + "116 104 th\n32 256 Ġtx\n", ":7: merged token 'Ġtx' does not match");
  expect_load_error(header + "116 104 th\n32 x Ġth\n", ":7: expected an integer");
  expect_load_error("#moetrain-bpe v1\nvocab_size 300\neot_id 258\nbyte_order identity\nmerges 2\n", ":2: inconsistent");
  expect_load_error("#moetrain-bpe v1\nvocab_size 259\neot_id 258\nbyte_order ebcdic\nmerges 2\n", ":4: expected byte_order");
}

}  // namespace
}  // namespace mt
