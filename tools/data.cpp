// `moetrain data`: train a BPE tokenizer, tokenize text into llm.c shards, and inspect shards.
#include <sched.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "cli_ranges.h"
#include "commands.h"
#include "mt/core/error.h"
#include "mt/data/bpe_trainer.h"
#include "mt/data/file_glob.h"
#include "mt/data/shard_writer.h"
#include "mt/data/token_shard.h"
#include "mt/data/tokenizer.h"

namespace mt::cli {
namespace {

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// The cores this process may run on (its CPU affinity, as set by taskset, a batch scheduler or a container).
int usable_cores() {
  cpu_set_t set;
  if (sched_getaffinity(0, sizeof(set), &set) != 0) return 1;
  return std::max(1, CPU_COUNT(&set));
}

struct TrainTokenizerArgs {
  std::vector<std::string> inputs;
  int32_t vocab_size = 4096;
  std::string out;
};

struct TokenizeArgs {
  std::vector<std::string> inputs;
  std::string tokenizer;
  std::string gpt2_dir;
  std::string out;
  double val_fraction = 0.01;
  int64_t shard_tokens = 100'000'000;
  int threads = usable_cores();
  int64_t chunk_bytes = 1 << 20;
};

struct InfoArgs {
  std::vector<std::string> shards;
  int32_t vocab_size = 0;
};

void run_train_tokenizer(const TrainTokenizerArgs& a) {
  const auto start = std::chrono::steady_clock::now();
  const std::vector<std::string> files = expand_file_patterns(a.inputs);
  const Tokenizer tok = train_bpe(files, a.vocab_size);
  tok.save(a.out);
  std::printf("trained a %d-token BPE (%zu merges) on %zu file(s) in %.2f s -> %s\n", tok.vocab_size(),
              tok.merges().size(), files.size(), seconds_since(start), a.out.c_str());
  if (tok.vocab_size() < a.vocab_size)
    std::printf("note: the text ran out of pairs to merge before reaching %d tokens\n", a.vocab_size);
}

void run_tokenize(const TokenizeArgs& a) {
  MT_CHECK(a.tokenizer.empty() != a.gpt2_dir.empty(), "data tokenize: give exactly one of --tokenizer and --gpt2");
  const auto start = std::chrono::steady_clock::now();
  const Tokenizer tok = Tokenizer::load(a.tokenizer.empty() ? a.gpt2_dir : a.tokenizer);
  TokenizeRun run;
  run.threads = a.threads;
  run.chunk_bytes = a.chunk_bytes;
  const bool tty = ::isatty(STDERR_FILENO) != 0;
  run.progress_every = std::chrono::milliseconds(tty ? 500 : 10'000);
  run.progress = [&](const TokenizeProgress& p) {
    const double mb = 1e-6 * static_cast<double>(p.bytes_read), total = 1e-6 * static_cast<double>(p.bytes_total);
    std::fprintf(stderr, "%stokenize: %.1f of %.1f MB read (%.0f%%), %lld documents, %lld tokens, %.1f MB/s%s",
                 tty ? "\r" : "", mb, total, total > 0 ? 100.0 * mb / total : 100.0, static_cast<long long>(p.documents),
                 static_cast<long long>(p.tokens), mb / std::max(seconds_since(start), 1e-9), tty && !p.done ? "" : "\n");
    std::fflush(stderr);
  };
  const ShardSummary s =
      tokenize_to_shards(expand_file_patterns(a.inputs), tok, a.out, a.shard_tokens, a.val_fraction, run);
  std::printf("%lld document(s), vocab %d (EOT %d): %lld train tokens in %zu shard(s), %lld val tokens in %zu "
              "shard(s) -> %s (%.2f s)\n",
              static_cast<long long>(s.documents), tok.vocab_size(), tok.eot_id(),
              static_cast<long long>(s.train_tokens), s.train_files.size(), static_cast<long long>(s.val_tokens),
              s.val_files.size(), a.out.c_str(), seconds_since(start));
}

void run_info(const InfoArgs& a) {
  int64_t total = 0;
  const std::vector<std::string> files = expand_file_patterns(a.shards);
  for (const std::string& path : files) {
    const ShardHeader h = read_shard_header(path);
    std::printf("%s: magic %d, version %d, %lld tokens", path.c_str(), h.magic, h.version,
                static_cast<long long>(h.tokens));
    if (a.vocab_size > 0) {
      const std::vector<uint16_t> tokens = read_shard(path, a.vocab_size);
      int max_id = -1;
      for (uint16_t t : tokens) max_id = std::max<int>(max_id, t);
      std::printf(", max id %d (< vocab %d)", max_id, a.vocab_size);
    }
    std::printf("\n");
    total += h.tokens;
  }
  std::printf("%zu shard(s), %lld tokens\n", files.size(), static_cast<long long>(total));
}

}  // namespace

void add_data_command(CLI::App& app) {
  CLI::App* data = app.add_subcommand("data", "Prepare training data: BPE tokenizers and llm.c token shards");
  data->require_subcommand(1);

  auto train = std::make_shared<TrainTokenizerArgs>();
  CLI::App* t = data->add_subcommand("train-tokenizer", "Learn a byte-level BPE (GPT-2 style) from text files");
  t->add_option("--input,-i", train->inputs, "Text files or glob patterns to learn from")->required()->type_name("FILE");
  t->add_option("--vocab-size", train->vocab_size,
                "Vocabulary size: 256 bytes + merges + <|endoftext|> (at most 65536 for shards)")
      ->check(integer_in(257, 1 << 20))
      ->capture_default_str();
  t->add_option("--out,-o", train->out, "Tokenizer file to write (moetrain-bpe text format)")
      ->required()
      ->type_name("FILE");
  t->callback([train] { run_train_tokenizer(*train); });

  auto tokenize = std::make_shared<TokenizeArgs>();
  CLI::App* k = data->add_subcommand(
      "tokenize",
      "Tokenize text files into llm.c shards DIR/train_NNNNNN.bin and DIR/val_NNNNNN.bin. Each file (split further "
      "at literal <|endoftext|>) is a document, opened by the EOT token; the last --val-fraction of the tokens form "
      "the validation split. Old train_*/val_* shards in DIR are replaced. The input is streamed (memory does not "
      "grow with it) and encoded on --threads threads; progress goes to stderr.");
  k->add_option("--input,-i", tokenize->inputs, "Text files or glob patterns")->required()->type_name("FILE");
  k->add_option("--tokenizer", tokenize->tokenizer,
                "A tokenizer written by 'data train-tokenizer', or a folder with GPT-2's encoder.json and vocab.bpe")
      ->type_name("PATH");
  k->add_option("--gpt2", tokenize->gpt2_dir, "A directory with GPT-2's encoder.json and vocab.bpe (scripts/fetch-gpt2-bpe.sh puts them in .deps/gpt2)")
      ->type_name("DIR");
  k->add_option("--out,-o", tokenize->out, "Output directory")->required()->type_name("DIR");
  k->add_option("--val-fraction", tokenize->val_fraction, "Fraction of tokens for validation, in [0, 1)")
      ->check(number_in(0, 1, Upper::kOpen))
      ->capture_default_str();
  k->add_option("--shard-size", tokenize->shard_tokens, "Tokens per shard")
      ->check(integer_in(1, INT32_MAX))
      ->capture_default_str();
  k->add_option("--threads", tokenize->threads,
                "Threads encoding text (default: the cores this process may use); the shards are the same for any count")
      ->check(integer_in(1, 4096))
      ->capture_default_str();
  k->add_option("--chunk-size", tokenize->chunk_bytes,
                "Bytes of text per unit of work, cut at a document end or a newline between visible characters")
      ->check(integer_in(1, INT32_MAX))
      ->capture_default_str();
  k->callback([tokenize] { run_tokenize(*tokenize); });

  auto info = std::make_shared<InfoArgs>();
  CLI::App* i = data->add_subcommand(
      "info", "Print and check the headers of token shards (magic, version, token count against the file size)");
  i->add_option("shards", info->shards, "Shard files or glob patterns")->required()->type_name("FILE");
  i->add_option("--vocab-size", info->vocab_size, "Also read the tokens and check every id is below this size")
      ->check(integer_in(1, 65536));
  i->callback([info] { run_info(*info); });
}

}  // namespace mt::cli
