// Private to src/dist: the NCCL side of Communicator for CUDA tensors, defined in nccl_ops.cpp
// beside this header. Every call is issued on the device's current stream unless it says otherwise.
#pragma once
#ifdef MT_WITH_CUDA
#include <mpi.h>

#include <memory>
#include <vector>

#include "mt/core/cuda_context.h"
#include "mt/dist/communicator.h"

namespace mt {

struct NcclComm;  // one NCCL communicator over an MPI group, on one device
// Collective over `comm`: rank 0 makes the unique id, MPI broadcasts it.
std::shared_ptr<NcclComm> make_nccl_comm(MPI_Comm comm, int device);
void nccl_all_reduce(NcclComm& c, const Tensor& t, ReduceKind op);
void nccl_broadcast(NcclComm& c, const Tensor& t, int root);
void nccl_all_gather(NcclComm& c, const Tensor& in, const Tensor& out);
void nccl_reduce_scatter(NcclComm& c, const Tensor& in, const Tensor& out, ReduceKind op);
void nccl_all_to_all(NcclComm& c, const Tensor& in, const Tensor& out, int size);
ncclComm* nccl_handle(NcclComm& c);
// On the communicator's own stream, after the work queued so far on the compute stream; `done` recorded after.
void nccl_all_reduce_start(NcclComm& c, const Tensor& t, ReduceKind op, CudaEvent& done);
// The same for a reduce-scatter of `in` into `out` with counts[r] elements for rank r.
void nccl_reduce_scatter_start(NcclComm& c, const Tensor& in, const Tensor& out, const std::vector<int64_t>& counts,
                               ReduceKind op, CudaEvent& done);

}  // namespace mt
#endif
