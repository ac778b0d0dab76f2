// Exit statuses of `moetrain train` a scheduler can act on (the README lists them), and the error
// that every rank of a job raises together, so each ends with that status and none is aborted.
#pragma once
#include <string>

#include "mt/core/error.h"

namespace mt {

enum class ExitStatus : int {
  kFinished = 0,      // train.steps done (or nothing left to do)
  kError = 1,         // bad input or a failure (a full disk, a damaged file): fix it and run again
  kWatchdog = 3,      // dist.timeout passed without progress: a rank stalled or a collective hung
  kDiverged = 4,      // train.max_bad_steps non-finite steps in a row, or a non-finite tensor at a save
  kInterrupted = 75,  // SIGINT/SIGTERM: the checkpoint was saved; run again to resume (EX_TEMPFAIL)
};

// Note [Errors every rank raises together]
// Under mpirun, an error on one rank ends the job by MPI_Abort (the others are killed by a
// signal). Errors every rank knows of at the same point — a divergence seen in the agreed loss, a
// failed write of the run folder shared at the next agreement — are raised as RunError on every
// rank instead: each prints (the lead the cause, the others a pointer to it) and exits with the
// status, MPI finalised.
class RunError : public Error {
 public:
  RunError(ExitStatus status, const std::string& what) : Error(what), status_(status) {}
  ExitStatus status() const { return status_; }

 private:
  ExitStatus status_;
};

}  // namespace mt
