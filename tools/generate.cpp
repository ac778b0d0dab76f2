// moetrain generate RUN_OR_CKPT --prompt TEXT: samples text with the KV cache, using the
// recipe's tokenizer (data.tokenizer: a moetrain BPE file, or a folder with GPT-2's files).
#include <cstdio>

#include "cli_ranges.h"
#include "commands.h"
#include "mt/data/tokenizer.h"
#include "mt/train/checkpoint_model.h"
#include "mt/train/sampling.h"

namespace mt::cli {

void add_generate_command(CLI::App& app) {
  struct Args {
    std::string path, prompt = "\n", tokenizer, device = "auto";
    int max_tokens = 64, top_k = 0;
    double temperature = 1.0;
    uint64_t seed = 0;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("generate", "Generate text from a run or checkpoint");
  c->add_option("checkpoint", a->path, "Run folder, checkpoints folder or .h5 file")->required();
  c->add_option("--prompt", a->prompt, "Text to continue");
  c->add_option("--max-tokens", a->max_tokens, "Tokens to generate")->check(integer_in(1));
  c->add_option("--temperature", a->temperature, "Sampling temperature; 0 = greedy")->check(number_in(0));
  c->add_option("--top-k", a->top_k, "Sample among the k most likely tokens; 0 = all")->check(integer_in(0));
  c->add_option("--seed", a->seed, "Sampling seed (same seed, same text)");
  c->add_option("--tokenizer", a->tokenizer, "Tokenizer file or GPT-2 folder; default: the recipe's data.tokenizer");
  c->add_option("--device", a->device, "auto, cpu or cuda[:N]");
  c->callback([a] {
    LoadedModel m = load_model(a->path, a->device);
    std::string tpath = a->tokenizer.empty() ? m.recipe.data.tokenizer : a->tokenizer;
    MT_CHECK(!tpath.empty(), "generate: the recipe names no data.tokenizer; pass --tokenizer");
    Tokenizer tok = Tokenizer::load(tpath);
    MT_CHECK(tok.vocab_size() <= m.recipe.model.vocab_size, "generate: tokenizer ", tpath, " has ", tok.vocab_size(),
             " tokens but the model was trained with vocab_size ", m.recipe.model.vocab_size);
    SamplingOptions so;
    so.max_tokens = a->max_tokens;
    so.temperature = a->temperature;
    so.top_k = a->top_k;
    so.seed = a->seed;
    so.stop_token = tok.eot_id();
    std::vector<int32_t> ids = generate_tokens(*m.model, tok.encode(a->prompt), so);
    std::printf("%s\n", tok.decode(ids).c_str());
  });
}

}  // namespace mt::cli
