// Communicator: collectives over a group of ranks. CPU tensors go through MPI, CUDA tensors
// through NCCL (its communicator built lazily, unique id shared by MPI_Bcast). Values are
// passed explicitly: there is no global world state beyond MPI itself.
#pragma once
#include <memory>
#include <vector>

#include "mt/core/tensor.h"

#ifdef MT_WITH_CUDA
struct ncclComm;  // <nccl.h>'s ncclComm_t is ncclComm*
#endif

namespace mt {

enum class ReduceKind { kSum, kMax, kMin, kAvg };

// RAII MPI initialisation for a process; safe to construct when launched without mpirun.
class MpiRuntime {
 public:
  MpiRuntime(int* argc, char*** argv);
  ~MpiRuntime();
  MpiRuntime(const MpiRuntime&) = delete;
  MpiRuntime& operator=(const MpiRuntime&) = delete;
};

// Ends every rank of the job (MPI_Abort) so that one failed rank never leaves the others hanging.
[[noreturn]] void abort_job(int code);

// A collective in flight (Communicator::all_reduce_start, reduce_scatter_start). wait() completes it: on CPU the MPI request,
// on CUDA the device's compute stream waits for the communication stream (the host does not). It holds
// the buffer until then; destroying an unwaited request waits. test() lets MPI progress the request and
// says whether it completed (CUDA: whether the NCCL work finished).
class CommRequest {
 public:
  struct Impl;
  CommRequest();
  explicit CommRequest(std::unique_ptr<Impl> impl);
  CommRequest(CommRequest&&) noexcept;
  CommRequest& operator=(CommRequest&&) noexcept;
  ~CommRequest();
  void wait();
  bool test();

 private:
  std::unique_ptr<Impl> impl_;
};

class Communicator {
 public:
  static Communicator world();  // MPI_COMM_WORLD (MPI must be initialised)
  int rank() const;
  int size() const;
  // A sub-group of the ranks with the same color, ordered by key (MPI_Comm_split).
  Communicator split(int color, int key) const;
  // The ranks of this group on this node (MPI_COMM_TYPE_SHARED), ordered by rank.
  Communicator split_by_node() const;
  // Rank within the node, the usual GPU index.
  int local_rank() const;

  void barrier() const;
  void all_reduce(const Tensor& t, ReduceKind op) const;  // in place, contiguous
  // The same, started and returned in flight (MPI_Iallreduce; on CUDA, NCCL on a communication stream
  // that first waits for the work queued so far). `t` must not be touched until the request is waited.
  CommRequest all_reduce_start(const Tensor& t, ReduceKind op) const;
  void broadcast(const Tensor& t, int root) const;         // in place, contiguous
  // out = concatenation over ranks of `in` (out numel = size * in numel).
  void all_gather(const Tensor& in, const Tensor& out) const;
  // in (size * n) reduced, rank r receives chunk r into out (n).
  void reduce_scatter(const Tensor& in, const Tensor& out, ReduceKind op) const;
  // The same with chunks of unequal sizes, started and returned in flight: `in` (sum of counts) is
  // reduced over the ranks and rank r receives chunk r, its counts[r] elements, into `out`
  // (MPI_Ireduce_scatter; on CUDA, ncclReduceScatter when the counts are equal, else one ncclReduce per
  // rank in a group, on the communication stream of all_reduce_start). Neither buffer may be touched
  // until the request is waited.
  CommRequest reduce_scatter_start(const Tensor& in, const Tensor& out, const std::vector<int64_t>& counts,
                                   ReduceKind op) const;
  // in/out (size * n): chunk j of `in` goes to rank j, chunk i of `out` came from rank i.
  void all_to_all(const Tensor& in, const Tensor& out) const;
  double all_reduce(double value, ReduceKind op) const;
#ifdef MT_WITH_CUDA
  // The NCCL communicator these collectives use for CUDA tensors on `device` (made on first use):
  // for a caller that times NCCL called directly next to them (`moetrain bench comm`).
  ncclComm* nccl_comm(int device) const;
#endif

  struct State;

 private:
  explicit Communicator(std::shared_ptr<State> s) : state_(std::move(s)) {}
  std::shared_ptr<State> state_;
};

}  // namespace mt
