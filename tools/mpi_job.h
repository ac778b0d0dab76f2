// The MPI frame of the subcommands that run on every rank (train, bench step): MPI is started, the
// body runs with the world communicator, and an error on one of several ranks ends the whole job.
#pragma once
#include <functional>

#include "mt/dist/communicator.h"

namespace mt::cli {

// Runs body(world) under an MpiRuntime. An exception on a job of several ranks is printed with the
// rank and ends the job (abort_job) rather than leaving the other ranks waiting in a collective; on
// one rank it propagates (main prints it). A RunError, raised by every rank together, is printed by
// rank 0 and ends each rank with its status (ExitWith), MPI finalised.
void run_mpi_job(const std::function<void(const Communicator& world)>& body);

}  // namespace mt::cli
