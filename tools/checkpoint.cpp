// `moetrain checkpoint consolidate CKPT OUT.h5`: a checkpoint (a sharded folder, a run folder or a
// checkpoints folder following `latest`, or a file) verified and rewritten as one file, the form
// to share or open with h5py; it loads anywhere a sharded one does.
#include <cstdio>
#include <memory>
#include <string>

#include "commands.h"
#include "mt/io/checkpoint_dir.h"
#include "mt/io/checkpoint_source.h"

namespace mt::cli {

void add_checkpoint_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("checkpoint", "Work with checkpoints");
  cmd->require_subcommand(1);
  struct Options {
    std::string from, out;
  };
  auto opt = std::make_shared<Options>();
  CLI::App* c = cmd->add_subcommand("consolidate", "Write a (sharded) checkpoint as one .h5 file");
  c->add_option("checkpoint", opt->from, "Sharded checkpoint folder, run folder or checkpoints folder (follows latest)")
      ->required();
  c->add_option("out", opt->out, "The .h5 file to write (replaced if it exists)")->required();
  c->callback([opt] {
    const CheckpointSource source(resolve_checkpoint(opt->from));  // every part verified whole
    consolidate_checkpoint(source, opt->out);
    std::printf("%s: %zu tensors from %d part(s) of %s\n", opt->out.c_str(), source.names().size(), source.parts(),
                source.path().string().c_str());
  });
}

}  // namespace mt::cli
