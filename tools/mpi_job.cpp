// run_mpi_job: MPI start-up and the job-wide abort on a rank's error.
#include "mpi_job.h"

#include <cstdio>
#include <exception>

#include "commands.h"
#include "mt/train/exit_status.h"

namespace mt::cli {

void run_mpi_job(const std::function<void(const Communicator& world)>& body) {
  MpiRuntime mpi(nullptr, nullptr);
  Communicator world = Communicator::world();
  try {
    body(world);
  } catch (const RunError& e) {
    // Every rank raised it (Note [Errors every rank raises together]): no rank is aborted.
    if (world.rank() == 0) std::fprintf(stderr, "moetrain: error: %s\n", e.what());
    throw ExitWith{static_cast<int>(e.status())};
  } catch (const std::exception& e) {
    if (world.size() > 1) {
      std::fprintf(stderr, "moetrain: error on rank %d: %s\n", world.rank(), e.what());
      abort_job(1);
    }
    throw;
  }
}

}  // namespace mt::cli
