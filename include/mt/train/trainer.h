// Trainer: runs a recipe end to end — builds the run (training_run.h, resuming per checkpoint.resume),
// then steps (micro-batches with gradient accumulation, staged KD, the distributed optimizer),
// evaluates, samples and checkpoints on cadence, and on SIGINT/SIGTERM saves and returns. Logs a
// progress line and <run_dir>/metrics.jsonl. Divergence and failed run-folder writes end every rank
// with a RunError (exit_status.h).
#pragma once
#include <memory>
#include <string>

#include "mt/dist/communicator.h"
#include "mt/io/recipe.h"

namespace mt {

struct TrainResult {
  int64_t steps_done = 0;      // optimizer steps completed in total (resumed ones included)
  int64_t steps_run = 0;       // optimizer steps run by this call
  double last_loss = 0;        // training loss of the last step
  double last_val_loss = -1;   // < 0 when never evaluated
  bool stopped_by_signal = false;
};

TrainResult train(Recipe recipe, const Communicator& world);

}  // namespace mt
