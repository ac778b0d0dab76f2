// NCCL collectives for CUDA tensors: the communicator is created per MPI group on first use,
// its unique id broadcast by MPI; every call is issued on the device's current stream.
#include "nccl_ops.h"

#include <nccl.h>

#define MT_NCCL_CHECK(expr)                                                                       \
  do {                                                                                            \
    ncclResult_t mt_r_ = (expr);                                                                  \
    MT_CHECK(mt_r_ == ncclSuccess, "NCCL error ", ncclGetErrorString(mt_r_), " in ", #expr);       \
  } while (0)

namespace mt {

struct NcclComm {
  ncclComm_t comm = nullptr;
  int device = 0;
  cudaStream_t side = nullptr;  // the stream of the started collectives (nccl_all_reduce_start), made on first use
  CudaEvent queued;             // the compute stream's work before a started collective
  ~NcclComm() {
    if (comm) ncclCommDestroy(comm);
    if (side) cudaStreamDestroy(side);
  }
};

std::shared_ptr<NcclComm> make_nccl_comm(MPI_Comm comm, int device) {
  int rank = 0, size = 1;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  ncclUniqueId id;
  if (rank == 0) MT_NCCL_CHECK(ncclGetUniqueId(&id));
  MT_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, comm) == MPI_SUCCESS, "MPI_Bcast of the NCCL unique id failed");
  auto c = std::make_shared<NcclComm>();
  c->device = device;
  set_device(device);
  MT_NCCL_CHECK(ncclCommInitRank(&c->comm, size, id, rank));
  return c;
}

ncclComm* nccl_handle(NcclComm& c) { return c.comm; }

namespace {

ncclDataType_t nccl_type(DType t) {
  switch (t) {
    case DType::kF32: return ncclFloat32;
    case DType::kF64: return ncclFloat64;
    case DType::kBF16: return ncclBfloat16;
    case DType::kF16: return ncclFloat16;
    case DType::kI32: return ncclInt32;
    case DType::kI64: return ncclInt64;
    case DType::kBool: return ncclUint8;
  }
  return ncclFloat32;
}

ncclRedOp_t nccl_op(ReduceKind op) {
  switch (op) {
    case ReduceKind::kSum: return ncclSum;
    case ReduceKind::kMax: return ncclMax;
    case ReduceKind::kMin: return ncclMin;
    case ReduceKind::kAvg: return ncclAvg;
  }
  return ncclSum;
}

}  // namespace

void nccl_all_reduce(NcclComm& c, const Tensor& t, ReduceKind op) {
  MT_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()), nccl_op(op), c.comm,
                              current_stream(c.device)));
}

// The communication stream, ordered after the work queued so far on the compute stream.
static cudaStream_t side_stream_after_compute(NcclComm& c) {
  if (!c.side) MT_CUDA_CHECK(cudaStreamCreateWithFlags(&c.side, cudaStreamNonBlocking));
  c.queued.record(current_stream(c.device));
  MT_CUDA_CHECK(cudaStreamWaitEvent(c.side, c.queued.get(), 0));
  return c.side;
}

void nccl_all_reduce_start(NcclComm& c, const Tensor& t, ReduceKind op, CudaEvent& done) {
  cudaStream_t s = side_stream_after_compute(c);
  MT_NCCL_CHECK(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()), nccl_op(op), c.comm, s));
  done.record(s);
}

// Equal chunks: one ncclReduceScatter. Unequal ones (ZeRO-2's buckets, whole parameters per owner): one
// ncclReduce per rank with a chunk, rooted there, in one group.
void nccl_reduce_scatter_start(NcclComm& c, const Tensor& in, const Tensor& out, const std::vector<int64_t>& counts,
                               ReduceKind op, CudaEvent& done) {
  cudaStream_t s = side_stream_after_compute(c);
  bool equal = true;
  for (int64_t n : counts) equal = equal && n == counts[0];
  if (equal) {
    MT_NCCL_CHECK(ncclReduceScatter(in.data_ptr(), out.data_ptr(), counts[0], nccl_type(in.dtype()), nccl_op(op),
                                    c.comm, s));
  } else {
    const size_t element = in.element_size();
    size_t at = 0;
    MT_NCCL_CHECK(ncclGroupStart());
    for (size_t root = 0; root < counts.size(); ++root) {
      if (counts[root] > 0)
        MT_NCCL_CHECK(ncclReduce(static_cast<const char*>(in.data_ptr()) + at * element, out.data_ptr(), counts[root],
                                 nccl_type(in.dtype()), nccl_op(op), static_cast<int>(root), c.comm, s));
      at += counts[root];
    }
    MT_NCCL_CHECK(ncclGroupEnd());
  }
  done.record(s);
}

void nccl_broadcast(NcclComm& c, const Tensor& t, int root) {
  MT_NCCL_CHECK(ncclBroadcast(t.data_ptr(), t.data_ptr(), t.numel(), nccl_type(t.dtype()), root, c.comm,
                              current_stream(c.device)));
}

void nccl_all_gather(NcclComm& c, const Tensor& in, const Tensor& out) {
  MT_NCCL_CHECK(ncclAllGather(in.data_ptr(), out.data_ptr(), in.numel(), nccl_type(in.dtype()), c.comm,
                              current_stream(c.device)));
}

void nccl_reduce_scatter(NcclComm& c, const Tensor& in, const Tensor& out, ReduceKind op) {
  MT_NCCL_CHECK(ncclReduceScatter(in.data_ptr(), out.data_ptr(), out.numel(), nccl_type(in.dtype()), nccl_op(op), c.comm,
                                  current_stream(c.device)));
}

void nccl_all_to_all(NcclComm& c, const Tensor& in, const Tensor& out, int size) {
  size_t chunk = in.numel() / size;
  size_t bytes = chunk * in.element_size();
  cudaStream_t s = current_stream(c.device);
  MT_NCCL_CHECK(ncclGroupStart());
  for (int peer = 0; peer < size; ++peer) {
    MT_NCCL_CHECK(ncclSend(static_cast<const char*>(in.data_ptr()) + peer * bytes, chunk, nccl_type(in.dtype()), peer, c.comm, s));
    MT_NCCL_CHECK(ncclRecv(static_cast<char*>(out.data_ptr()) + peer * bytes, chunk, nccl_type(in.dtype()), peer, c.comm, s));
  }
  MT_NCCL_CHECK(ncclGroupEnd());
}

}  // namespace mt
