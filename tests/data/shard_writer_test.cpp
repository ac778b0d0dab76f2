// tokenize_to_shards: EOT-separated documents, the deterministic tail validation split, shard files.
#include "mt/data/shard_writer.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "mt/core/error.h"
#include "mt/data/bpe_trainer.h"
#include "mt/data/file_bytes.h"
#include "mt/data/token_shard.h"
#include "temp_dir.h"

namespace mt {
namespace {

std::vector<int32_t> read_all(const std::vector<std::string>& paths, int32_t vocab) {
  std::vector<int32_t> out;
  for (const auto& p : paths) {
    const auto t = read_shard(p, vocab);
    out.insert(out.end(), t.begin(), t.end());
  }
  return out;
}

TEST(ShardWriter, WritesEotSeparatedDocumentsAndATailValSplit) {
  testing::TempDir dir;
  const std::string text = read_file_bytes(MT_TEST_DATA_DIR "/kjv_genesis_excerpt.txt");
  const Tokenizer tok = train_bpe_on_text(text, 512);
  const std::string doc_a = text.substr(0, 3000), doc_b = text.substr(3000, 2000), doc_c = text.substr(5000, 1000);
  write_file_bytes(dir.file("one.txt"), doc_a);
  write_file_bytes(dir.file("two.txt"), doc_b + "<|endoftext|>" + doc_c + "<|endoftext|>");
  const std::string out = dir.file("shards");
  const ShardSummary s = tokenize_to_shards({dir.file("one.txt"), dir.file("two.txt")}, tok, out, 500, 0.1);

  std::vector<int32_t> expected;
  for (const std::string& doc : {doc_a, doc_b, doc_c}) {
    expected.push_back(tok.eot_id());
    const auto ids = tok.encode(doc);
    expected.insert(expected.end(), ids.begin(), ids.end());
  }
  const int64_t total = static_cast<int64_t>(expected.size());
  EXPECT_EQ(s.documents, 3);
  EXPECT_EQ(s.val_tokens, static_cast<int64_t>(0.1 * static_cast<double>(total)));
  EXPECT_EQ(s.train_tokens + s.val_tokens, total);
  ASSERT_EQ(s.train_files.size(), static_cast<size_t>((s.train_tokens + 499) / 500));
  ASSERT_EQ(s.val_files.size(), static_cast<size_t>((s.val_tokens + 499) / 500));
  EXPECT_EQ(s.train_files[0], out + "/train_000000.bin");
  EXPECT_EQ(s.val_files[0], out + "/val_000000.bin");
  EXPECT_EQ(read_shard_header(s.train_files[0]).tokens, 500);

  std::vector<int32_t> written = read_all(s.train_files, tok.vocab_size());
  const std::vector<int32_t> val = read_all(s.val_files, tok.vocab_size());
  written.insert(written.end(), val.begin(), val.end());
  EXPECT_EQ(written, expected);
  EXPECT_EQ(val, std::vector<int32_t>(expected.end() - s.val_tokens, expected.end()));
}

TEST(ShardWriter, ReplacesOldShardsAndIsDeterministic) {
  testing::TempDir dir;
  const std::string text = read_file_bytes(MT_TEST_DATA_DIR "/kjv_genesis_excerpt.txt");
  write_file_bytes(dir.file("in.txt"), text);
  const Tokenizer tok = train_bpe_on_text(text, 300);
  const std::string out = dir.file("out");
  const ShardSummary first = tokenize_to_shards({dir.file("in.txt")}, tok, out, 2000, 0.05);
  std::filesystem::create_directories(out);
  write_file_bytes(out + "/train_000999.bin", "stale");
  write_file_bytes(out + "/notes.txt", "kept");
  const ShardSummary second = tokenize_to_shards({dir.file("in.txt")}, tok, out, 2000, 0.05);
  EXPECT_EQ(first.train_files, second.train_files);
  EXPECT_FALSE(std::filesystem::exists(out + "/train_000999.bin"));
  EXPECT_TRUE(std::filesystem::exists(out + "/notes.txt"));
  EXPECT_EQ(read_all(first.train_files, tok.vocab_size()), read_all(second.train_files, tok.vocab_size()));
}

TEST(ShardWriter, RejectsBadArguments) {
  testing::TempDir dir;
  write_file_bytes(dir.file("in.txt"), "tiny");
  const Tokenizer tok = train_bpe_on_text("tiny", 300);
  EXPECT_THROW(tokenize_to_shards({dir.file("in.txt")}, tok, dir.file("o"), 0, 0.1), Error);
  EXPECT_THROW(tokenize_to_shards({dir.file("in.txt")}, tok, dir.file("o"), 10, 1.0), Error);
  EXPECT_THROW(tokenize_to_shards({dir.file("in.txt")}, tok, dir.file("o"), 10, 0.01), Error);  // empty val
  EXPECT_THROW(tokenize_to_shards({dir.file("missing.txt")}, tok, dir.file("o"), 10, 0.0), Error);
}

}  // namespace
}  // namespace mt
