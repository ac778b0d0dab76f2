// Trainer: runs a recipe end to end — builds the model on the chosen device, resumes from the
// latest checkpoint (resume: auto), then steps (micro-batches with gradient accumulation, staged KD
// from a teacher when distill.teacher is set, DP gradient averaging, clipping, schedule), evaluates,
// samples and checkpoints on cadence, and on SIGINT/SIGTERM saves and returns. Logs a progress line
// and <run_dir>/metrics.jsonl.
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

// Device and compute dtype for a recipe: auto -> cuda if available, bf16 on cuda, f32 on cpu.
Device resolve_device(const Recipe& recipe, const Communicator& world);
DType resolve_dtype(const Recipe& recipe, Device device);

TrainResult train(Recipe recipe, const Communicator& world);

}  // namespace mt
