// moetrain eval RUN_OR_CKPT [k=v ...]: validation loss and perplexity of a checkpoint on its recipe's
// validation shards (or --data), sequential windows, MoE layers at the eval capacity factor or, with
// --dropless, without dropping tokens. k=v overrides the checkpoint's recipe.
#include <cmath>
#include <cstdio>

#include "cli_ranges.h"
#include "commands.h"
#include "mt/data/token_loader.h"
#include "mt/train/checkpoint_model.h"
#include "mt/train/validation.h"

namespace mt::cli {

void add_eval_command(CLI::App& app) {
  struct Args {
    std::string path, data, device = "auto";
    int steps = 50, batch = 0;
    bool dropless = false;
    std::vector<std::string> overrides;
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("eval", "Validation loss and perplexity of a run or checkpoint");
  c->add_option("checkpoint", a->path, "Run folder, checkpoints folder, .h5 file or sharded checkpoint folder")->required();
  c->add_option("--data", a->data, "Token shards (glob) to evaluate on; default: the recipe's data.val");
  c->add_option("--steps", a->steps, "Batches to evaluate (at most one pass over the data)")->check(integer_in(1));
  c->add_option("--batch", a->batch, "Sequences per batch; default: the recipe's train.micro_batch")->check(integer_in(1));
  c->add_option("--device", a->device, "auto, cpu or cuda[:N]");
  c->add_flag("--dropless", a->dropless,
              "MoE layers keep every token (capacity = the largest expert count): the loss without dropping");
  c->add_option("overrides", a->overrides, "section.key=value overrides of the checkpoint's recipe");
  c->callback([a] {
    std::vector<std::string> overrides = a->overrides;
    if (a->dropless) overrides.push_back("moe.drop_tokens=false");
    LoadedModel m = load_model(a->path, a->device, overrides);
    TokenLoaderOptions o;
    o.shards = {a->data.empty() ? m.recipe.data.val : a->data};
    MT_CHECK(!o.shards[0].empty(), "eval: the recipe has no data.val; pass --data");
    o.batch_size = a->batch > 0 ? a->batch : m.recipe.train.micro_batch;
    o.seq_len = m.recipe.model.seq_len;
    o.vocab_size = m.recipe.model.vocab_size;
    o.order = LoaderOrder::kSequential;
    TokenLoader loader(o);
    int64_t steps = std::min<int64_t>(a->steps, std::max<int64_t>(1, loader.steps_per_epoch()));
    double loss = validation_loss(*m.model, loader, steps, m.device);
    MT_CHECK(std::isfinite(loss), "eval: the validation loss of ", m.checkpoint.string(), " (step ", m.step,
             ") is not finite (", loss, "): the weights overflow in the forward; the run diverged before this checkpoint");
    std::printf("checkpoint: %s (step %ld)%s\nval loss: %.4f\nperplexity: %.2f\ntokens: %ld\n",
                m.checkpoint.string().c_str(), static_cast<long>(m.step), m.recipe.moe.drop_tokens ? "" : ", dropless",
                loss, std::exp(loss), static_cast<long>(steps * o.batch_size * o.seq_len));
  });
}

}  // namespace mt::cli
