// tokenize_to_shards: documents -> one EOT-separated token stream -> train/val shards, streamed:
// chunks of text are encoded on several threads and appended in input order as they finish.
#include "mt/data/shard_writer.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <future>

#include "mt/core/error.h"
#include "mt/data/shard_series.h"
#include "mt/data/shard_stream.h"
#include "mt/data/text_chunks.h"
#include "mt/data/worker_pool.h"

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

// Removes out_dir's shards (train_NNNNNN.bin, val_NNNNNN.bin), or with `temporary` their .tmp
// names: the leftovers of a run that did not finish.
void remove_shards(const std::string& out_dir, bool temporary) {
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(out_dir, ec)) {
    std::string name = entry.path().filename().string();
    if (temporary != name.ends_with(".tmp")) continue;
    if (temporary) name.resize(name.size() - 4);
    if (!entry.is_regular_file() || !is_shard_name(name)) continue;
    std::filesystem::remove(entry.path(), ec);
    MT_CHECK(!ec, "tokenize: cannot remove the old shard '", entry.path().string(), "': ", ec.message());
  }
  MT_CHECK(!ec, "tokenize: cannot list '", out_dir, "': ", ec.message());
}

std::vector<int32_t> encode_chunk(const Tokenizer& tokenizer, const TextChunk& chunk) {
  std::vector<int32_t> ids;
  if (chunk.opens_document) ids.push_back(tokenizer.eot_id());
  const std::vector<int32_t> text = tokenizer.encode(chunk.text);
  ids.insert(ids.end(), text.begin(), text.end());
  return ids;
}

}  // namespace

ShardSummary tokenize_to_shards(const std::vector<std::string>& files, const Tokenizer& tokenizer,
                                const std::string& out_dir, int64_t shard_tokens, double val_fraction,
                                const TokenizeRun& run) {
  MT_CHECK(!files.empty(), "tokenize: expected at least one input file");
  MT_CHECK(shard_tokens >= 1 && shard_tokens <= INT32_MAX, "tokenize: expected a shard size in [1, ", INT32_MAX,
           "] tokens, got ", shard_tokens);
  MT_CHECK(val_fraction >= 0.0 && val_fraction < 1.0, "tokenize: expected a validation fraction in [0, 1), got ",
           val_fraction);
  MT_CHECK(tokenizer.vocab_size() <= 65536, "tokenize: shards store uint16 ids, so the vocabulary must have at most ",
           "65536 tokens, got ", tokenizer.vocab_size());
  MT_CHECK(run.threads >= 1, "tokenize: expected at least 1 thread, got ", run.threads);

  std::error_code ec;
  std::filesystem::create_directories(out_dir, ec);
  MT_CHECK(!ec, "tokenize: cannot create the output directory '", out_dir, "': ", ec.message());
  remove_shards(out_dir, /*temporary=*/true);

  // Note [Streaming the validation split]: the split point N - floor(val_fraction * N) is known only
  // at the end, so every token first goes to the train series; the tail is then copied from those
  // files into the val series and the train series cut at the split point.
  ShardSummary summary;
  ShardSeries train(out_dir, "train", shard_tokens), val(out_dir, "val", shard_tokens);
  TextChunker chunker(files, run.chunk_bytes);
  WorkerPool workers(run.threads == 1 ? 0 : run.threads);
  std::deque<std::future<std::vector<int32_t>>> encoding;  // in input order, at most run.threads
  const auto take_oldest = [&] {
    train.append(encoding.front().get());
    encoding.pop_front();
  };
  auto last_report = std::chrono::steady_clock::now();
  const auto report = [&](int64_t tokens, bool done) {
    if (!run.progress) return;
    const auto now = std::chrono::steady_clock::now();
    if (!done && now - last_report < run.progress_every) return;
    last_report = now;
    run.progress({chunker.bytes_read(), chunker.bytes_total(), tokens, summary.documents, done});
  };
  for (TextChunk chunk; chunker.next(chunk);) {
    summary.documents += chunk.opens_document;
    if (encoding.size() == static_cast<size_t>(run.threads)) take_oldest();
    encoding.push_back(workers.submit([&tokenizer, c = std::move(chunk)] { return encode_chunk(tokenizer, c); }));
    report(train.tokens(), false);
  }
  while (!encoding.empty()) take_oldest();
  train.close();

  const int64_t total = train.tokens();
  summary.val_tokens = static_cast<int64_t>(val_fraction * static_cast<double>(total));
  summary.train_tokens = total - summary.val_tokens;
  MT_CHECK(val_fraction == 0.0 || summary.val_tokens > 0, "tokenize: validation fraction ", val_fraction, " of ",
           total, " tokens leaves an empty validation split");
  MT_CHECK(summary.train_tokens > 0, "tokenize: the inputs hold no text");
  if (summary.val_tokens > 0) {
    const ShardStream written(train.temp_files(), 65536);
    std::vector<int32_t> block;
    for (int64_t at = summary.train_tokens; at < total; at += static_cast<int64_t>(block.size())) {
      block.resize(static_cast<size_t>(std::min<int64_t>(total - at, 1 << 20)));
      written.read(at, block);
      val.append(block);
    }
    train.truncate(summary.train_tokens);
  }
  remove_shards(out_dir, /*temporary=*/false);
  summary.train_files = train.commit();
  summary.val_files = val.commit();
  report(total, true);
  return summary;
}

}  // namespace mt
