// tokenize_to_shards: documents -> one EOT-separated token stream -> train/val shards.
#include "mt/data/shard_writer.h"

#include <cstdio>
#include <filesystem>
#include <span>

#include "mt/core/error.h"
#include "mt/data/file_bytes.h"
#include "mt/data/token_shard.h"

namespace mt {
namespace {

bool is_shard_name(const std::string& name) {
  const auto digits_bin = [&](size_t prefix) {
    if (name.size() != prefix + 6 + 4 || name.substr(prefix + 6) != ".bin") return false;
    for (size_t i = prefix; i < prefix + 6; ++i)
      if (name[i] < '0' || name[i] > '9') return false;
    return true;
  };
  return (name.starts_with("train_") && digits_bin(6)) || (name.starts_with("val_") && digits_bin(4));
}

std::vector<std::string> write_split(std::span<const int32_t> tokens, const std::string& out_dir,
                                     const std::string& prefix, int64_t shard_tokens) {
  std::vector<std::string> paths;
  for (size_t start = 0; start < tokens.size(); start += shard_tokens) {
    char name[32];
    std::snprintf(name, sizeof(name), "%s_%06zu.bin", prefix.c_str(), paths.size());
    paths.push_back((std::filesystem::path(out_dir) / name).string());
    write_shard(paths.back(), tokens.subspan(start, std::min<size_t>(shard_tokens, tokens.size() - start)));
  }
  return paths;
}

}  // namespace

ShardSummary tokenize_to_shards(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                                const std::string& out_dir, int64_t shard_tokens, double val_fraction) {
  MT_CHECK(!files.empty(), "tokenize: expected at least one input file");
  MT_CHECK(shard_tokens >= 1 && shard_tokens <= INT32_MAX, "tokenize: expected a shard size in [1, ", INT32_MAX,
           "] tokens, got ", shard_tokens);
  MT_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "tokenize: expected a validation fraction in [0, 1), got ",
           val_fraction);
  MT_CHECK(tokenizer.vocab_size() <= 65536, "tokenize: shards store uint16 ids, so the vocabulary must have at most ",
           "65536 tokens, got ", tokenizer.vocab_size());

  ShardSummary summary;
  std::vector<int32_t> stream;
  for (const std::string& path : files) {
    const std::string text = read_file_bytes(path);
    for (size_t pos = 0; pos <= text.size();) {
      size_t end = text.find(kEndOfText, pos);
      if (end == std::string::npos) end = text.size();
      if (end > pos) {
        stream.push_back(tokenizer.eot_id());
        const std::vector<int32_t> ids = tokenizer.encode(std::string_view(text).substr(pos, end - pos));
        stream.insert(stream.end(), ids.begin(), ids.end());
        ++summary.documents;
      }
      pos = end + kEndOfText.size();
    }
  }
  const int64_t total = static_cast<int64_t>(stream.size());
  summary.val_tokens = static_cast<int64_t>(val_fraction * static_cast<double>(total));
  summary.train_tokens = total - summary.val_tokens;
  MT_CHECK(val_fraction == 0.0 || summary.val_tokens > 0, "tokenize: validation fraction ", val_fraction, " of ",
           total, " tokens leaves an empty validation split");
  MT_CHECK(summary.train_tokens > 0, "tokenize: the inputs hold no text");

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  MT_CHECK(!ec, "tokenize: cannot create the output directory '", out_dir, "': ", ec.message());
  for (const auto& entry : std::filesystem::directory_iterator(out_dir, ec)) {
    if (!entry.is_regular_file() || !is_shard_name(entry.path().filename().string())) continue;
    std::filesystem::remove(entry.path(), ec);
    MT_CHECK(!ec, "tokenize: cannot remove the old shard '", entry.path().string(), "': ", ec.message());
  }
  MT_CHECK(!ec, "tokenize: cannot list '", out_dir, "': ", ec.message());
  const std::span<const int32_t> all(stream);
  summary.train_files = write_split(all.first(summary.train_tokens), out_dir, "train", shard_tokens);
  summary.val_files = write_split(all.subspan(summary.train_tokens), out_dir, "val", shard_tokens);
  return summary;
}

}  // namespace mt
