// Communicator over MPI (CPU tensors) with NCCL for CUDA tensors (src/dist/cuda/nccl_ops.cpp).
#include "mt/dist/communicator.h"

#include <mpi.h>

#include <climits>
#include <cstdio>

#include "mt/core/device_copy.h"
#ifdef MT_WITH_CUDA
#include "cuda/nccl_ops.h"
#include "mt/core/cuda_context.h"
#endif
#include "mt/ops/op_profiler.h"
#include "mt/ops/ops.h"

namespace mt {

namespace {

void mpi_check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    MT_FAIL("MPI error in ", what, ": ", std::string(msg, len));
  }
}

// bf16 has no MPI datatype: a 2-byte type and a sum op that rounds each partial sum to bf16, as
// NCCL's bf16 all-reduce does (the bf16 gradient reduce of dist.grad_reduce_dtype on CPU ranks).
// Created on first use (after MPI_Init) and kept for the process.
void bf16_sum(void* in, void* inout, int* len, MPI_Datatype*) {
  const bf16* a = static_cast<const bf16*>(in);
  bf16* b = static_cast<bf16*>(inout);
  for (int i = 0; i < *len; ++i) b[i] = bf16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

struct MpiBf16 {
  MPI_Datatype type;
  MPI_Op sum;
};

const MpiBf16& mpi_bf16() {
  static const MpiBf16 handles = [] {
    MpiBf16 h{};
    mpi_check(MPI_Type_contiguous(2, MPI_BYTE, &h.type), "MPI_Type_contiguous");
    mpi_check(MPI_Type_commit(&h.type), "MPI_Type_commit");
    mpi_check(MPI_Op_create(&bf16_sum, /*commute=*/1, &h.sum), "MPI_Op_create");
    return h;
  }();
  return handles;
}

MPI_Datatype mpi_type(DType t) {
  switch (t) {
    case DType::kF32: return MPI_FLOAT;
    case DType::kF64: return MPI_DOUBLE;
    case DType::kI32: return MPI_INT32_T;
    case DType::kI64: return MPI_INT64_T;
    case DType::kBool: return MPI_C_BOOL;
    case DType::kBF16: return mpi_bf16().type;
    default: MT_FAIL("MPI collectives on CPU tensors support f32, f64, i32, i64, bool, bf16; got ", dtype_name(t));
  }
}

MPI_Op mpi_op(ReduceKind op, DType t) {
  if (t == DType::kBF16) {
    MT_CHECK(op == ReduceKind::kSum || op == ReduceKind::kAvg, "MPI reductions of bf16 CPU tensors support sum and avg");
    return mpi_bf16().sum;
  }
  switch (op) {
    case ReduceKind::kSum:
    case ReduceKind::kAvg: return MPI_SUM;
    case ReduceKind::kMax: return MPI_MAX;
    case ReduceKind::kMin: return MPI_MIN;
  }
  return MPI_SUM;
}

void check_contiguous(const Tensor& t, const char* op) {
  MT_CHECK(t.is_contiguous(), op, ": expected a contiguous tensor, got ", t.describe(), " with strides ", t.strides());
}

}  // namespace

struct Communicator::State {
  MPI_Comm comm = MPI_COMM_NULL;
  bool owned = false;
#ifdef MT_WITH_CUDA
  std::shared_ptr<NcclComm> nccl;
  NcclComm& nccl_for(int device) {
    if (!nccl) nccl = make_nccl_comm(comm, device);
    return *nccl;
  }
#endif
  ~State() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (owned && !finalized) MPI_Comm_free(&comm);
  }
};

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) mpi_check(MPI_Init(argc, argv), "MPI_Init");
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void abort_job(int code) {
  int initialized = 0, size = 1;
  MPI_Initialized(&initialized);
  if (initialized) MPI_Comm_size(MPI_COMM_WORLD, &size);
  std::fflush(stdout);
  std::fflush(stderr);
  if (initialized && size > 1) MPI_Abort(MPI_COMM_WORLD, code);
  std::exit(code);
}

Communicator Communicator::world() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  MT_CHECK(initialized, "Communicator::world: MPI is not initialised (construct an MpiRuntime first)");
  auto s = std::make_shared<State>();
  s->comm = MPI_COMM_WORLD;
  return Communicator(s);
}

int Communicator::rank() const {
  int r = 0;
  MPI_Comm_rank(state_->comm, &r);
  return r;
}

int Communicator::size() const {
  int n = 1;
  MPI_Comm_size(state_->comm, &n);
  return n;
}

Communicator Communicator::split(int color, int key) const {
  auto s = std::make_shared<State>();
  mpi_check(MPI_Comm_split(state_->comm, color, key, &s->comm), "MPI_Comm_split");
  s->owned = true;
  return Communicator(s);
}

Communicator Communicator::split_by_node() const {
  auto s = std::make_shared<State>();
  mpi_check(MPI_Comm_split_type(state_->comm, MPI_COMM_TYPE_SHARED, rank(), MPI_INFO_NULL, &s->comm),
            "MPI_Comm_split_type");
  s->owned = true;
  return Communicator(s);
}

int Communicator::local_rank() const { return split_by_node().rank(); }

void Communicator::barrier() const { mpi_check(MPI_Barrier(state_->comm), "MPI_Barrier"); }

void Communicator::all_reduce(const Tensor& t, ReduceKind op) const {
  check_contiguous(t, "all_reduce");
  if (size() == 1 || t.numel() == 0) return;
#ifdef MT_WITH_CUDA
  if (t.device().is_cuda()) {
    OpProfiler::time(OpCategory::kCommunication, t.device(), [&] { nccl_all_reduce(state_->nccl_for(t.device().index), t, op); });
    t.bump_version();
    return;
  }
#endif
  mpi_check(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.dtype()),
                          mpi_op(op, t.dtype()), state_->comm),
            "MPI_Allreduce");
  if (op == ReduceKind::kAvg) mul_(t.detach(), 1.0 / size());
  t.bump_version();
}

struct CommRequest::Impl {
  Tensor t;       // the result (averaged in wait() for kAvg)
  Tensor source;  // a separate input held until completion (reduce_scatter_start)
  std::vector<int> counts;  // MPI_Ireduce_scatter's receive counts, alive until completion
  ReduceKind op = ReduceKind::kSum;
  int size = 1;
  MPI_Request request = MPI_REQUEST_NULL;
#ifdef MT_WITH_CUDA
  std::unique_ptr<CudaEvent> done;  // CUDA: recorded on the communication stream after the collective
#endif
  bool waited = false;
};

CommRequest::CommRequest() = default;
CommRequest::CommRequest(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
CommRequest::CommRequest(CommRequest&&) noexcept = default;
CommRequest& CommRequest::operator=(CommRequest&&) noexcept = default;
CommRequest::~CommRequest() {
  if (!impl_ || impl_->waited) return;
  try {
    wait();
  } catch (...) {  // a destructor must not throw; the failure was or will be reported by another call
  }
}

void CommRequest::wait() {
  if (!impl_ || impl_->waited) return;
  impl_->waited = true;
#ifdef MT_WITH_CUDA
  if (impl_->done) {
    MT_CUDA_CHECK(cudaStreamWaitEvent(current_stream(impl_->t.device().index), impl_->done->get(), 0));
    impl_->t.bump_version();
    return;
  }
#endif
  mpi_check(MPI_Wait(&impl_->request, MPI_STATUS_IGNORE), "MPI_Wait");
  if (impl_->op == ReduceKind::kAvg) mul_(impl_->t.detach(), 1.0 / impl_->size);
  impl_->t.bump_version();
}

bool CommRequest::test() {
  if (!impl_ || impl_->waited) return true;
#ifdef MT_WITH_CUDA
  if (impl_->done) return cudaEventQuery(impl_->done->get()) == cudaSuccess;
#endif
  int flag = 0;
  mpi_check(MPI_Test(&impl_->request, &flag, MPI_STATUS_IGNORE), "MPI_Test");
  return flag != 0;
}

CommRequest Communicator::all_reduce_start(const Tensor& t, ReduceKind op) const {
  check_contiguous(t, "all_reduce_start");
  auto impl = std::make_unique<CommRequest::Impl>();
  impl->t = t;
  impl->op = op;
  impl->size = size();
  if (size() == 1 || t.numel() == 0) {
    impl->waited = true;
    return CommRequest(std::move(impl));
  }
#ifdef MT_WITH_CUDA
  if (t.device().is_cuda()) {
    impl->done = std::make_unique<CudaEvent>();
    nccl_all_reduce_start(state_->nccl_for(t.device().index), t, op, *impl->done);
    return CommRequest(std::move(impl));
  }
#endif
  mpi_check(MPI_Iallreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), mpi_type(t.dtype()),
                           mpi_op(op, t.dtype()), state_->comm, &impl->request),
            "MPI_Iallreduce");
  return CommRequest(std::move(impl));
}

CommRequest Communicator::reduce_scatter_start(const Tensor& in, const Tensor& out, const std::vector<int64_t>& counts,
                                               ReduceKind op) const {
  check_contiguous(in, "reduce_scatter_start");
  check_contiguous(out, "reduce_scatter_start");
  check_same_dtype("reduce_scatter_start", in, out);
  MT_CHECK(static_cast<int>(counts.size()) == size(), "reduce_scatter_start: ", counts.size(), " counts for ", size(),
           " ranks");
  int64_t total = 0;
  for (int64_t c : counts) {
    MT_CHECK(c >= 0, "reduce_scatter_start: negative count ", c);
    total += c;
  }
  MT_CHECK(in.numel() == total, "reduce_scatter_start: in has ", in.numel(), " elements, the counts sum to ", total);
  MT_CHECK(out.numel() == counts[rank()], "reduce_scatter_start: out has ", out.numel(), " elements, rank ", rank(),
           " receives ", counts[rank()]);
  auto impl = std::make_unique<CommRequest::Impl>();
  impl->t = out;
  impl->source = in;
  impl->op = op;
  impl->size = size();
  if (size() == 1) {
    if (total > 0) out.copy_(in);
    impl->waited = true;
    return CommRequest(std::move(impl));
  }
#ifdef MT_WITH_CUDA
  if (in.device().is_cuda()) {
    impl->done = std::make_unique<CudaEvent>();
    nccl_reduce_scatter_start(state_->nccl_for(in.device().index), in, out, counts, op, *impl->done);
    return CommRequest(std::move(impl));
  }
#endif
  for (int64_t c : counts) {
    MT_CHECK(c <= INT_MAX, "reduce_scatter_start: a chunk of ", c, " elements exceeds MPI's int count");
    impl->counts.push_back(static_cast<int>(c));
  }
  mpi_check(MPI_Ireduce_scatter(in.data_ptr(), out.data_ptr(), impl->counts.data(), mpi_type(in.dtype()),
                                mpi_op(op, in.dtype()), state_->comm, &impl->request),
            "MPI_Ireduce_scatter");
  return CommRequest(std::move(impl));
}

void Communicator::broadcast(const Tensor& t, int root) const {
  check_contiguous(t, "broadcast");
  if (size() == 1 || t.numel() == 0) return;
#ifdef MT_WITH_CUDA
  if (t.device().is_cuda()) {
    OpProfiler::time(OpCategory::kCommunication, t.device(), [&] { nccl_broadcast(state_->nccl_for(t.device().index), t, root); });
    t.bump_version();
    return;
  }
#endif
  mpi_check(MPI_Bcast(t.data_ptr(), static_cast<int>(t.nbytes()), MPI_BYTE, root, state_->comm), "MPI_Bcast");
  t.bump_version();
}

void Communicator::all_gather(const Tensor& in, const Tensor& out) const {
  check_contiguous(in, "all_gather");
  check_contiguous(out, "all_gather");
  check_same_dtype("all_gather", in, out);
  MT_CHECK(out.numel() == in.numel() * size(), "all_gather: out has ", out.numel(), " elements, expected ",
           in.numel() * size());
#ifdef MT_WITH_CUDA
  if (in.device().is_cuda()) {
    OpProfiler::time(OpCategory::kCommunication, in.device(), [&] { nccl_all_gather(state_->nccl_for(in.device().index), in, out); });
    return;
  }
#endif
  int bytes = static_cast<int>(in.nbytes());
  mpi_check(MPI_Allgather(in.data_ptr(), bytes, MPI_BYTE, out.data_ptr(), bytes, MPI_BYTE, state_->comm), "MPI_Allgather");
  out.bump_version();
}

void Communicator::reduce_scatter(const Tensor& in, const Tensor& out, ReduceKind op) const {
  check_contiguous(in, "reduce_scatter");
  check_contiguous(out, "reduce_scatter");
  check_same_dtype("reduce_scatter", in, out);
  MT_CHECK(in.numel() == out.numel() * size(), "reduce_scatter: in has ", in.numel(), " elements, expected ",
           out.numel() * size());
#ifdef MT_WITH_CUDA
  if (in.device().is_cuda()) {
    OpProfiler::time(OpCategory::kCommunication, in.device(),
        [&] { nccl_reduce_scatter(state_->nccl_for(in.device().index), in, out, op); });
    return;
  }
#endif
  mpi_check(MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), static_cast<int>(out.numel()), mpi_type(in.dtype()),
                                     mpi_op(op, in.dtype()), state_->comm),
            "MPI_Reduce_scatter_block");
  if (op == ReduceKind::kAvg) mul_(out.detach(), 1.0 / size());
  out.bump_version();
}

void Communicator::all_to_all(const Tensor& in, const Tensor& out) const {
  check_contiguous(in, "all_to_all");
  check_contiguous(out, "all_to_all");
  check_same_dtype("all_to_all", in, out);
  check_same_shape("all_to_all", in, out);
  MT_CHECK(in.numel() % size() == 0, "all_to_all: ", in.numel(), " elements do not split over ", size(), " ranks");
#ifdef MT_WITH_CUDA
  if (in.device().is_cuda()) {
    OpProfiler::time(OpCategory::kCommunication, in.device(),
        [&] { nccl_all_to_all(state_->nccl_for(in.device().index), in, out, size()); });
    return;
  }
#endif
  int bytes = static_cast<int>(in.nbytes() / size());
  mpi_check(MPI_Alltoall(in.data_ptr(), bytes, MPI_BYTE, out.data_ptr(), bytes, MPI_BYTE, state_->comm), "MPI_Alltoall");
  out.bump_version();
}

double Communicator::all_reduce(double value, ReduceKind op) const {
  double out = value;
  mpi_check(MPI_Allreduce(&value, &out, 1, MPI_DOUBLE, mpi_op(op, DType::kF64), state_->comm), "MPI_Allreduce");
  return op == ReduceKind::kAvg ? out / size() : out;
}

#ifdef MT_WITH_CUDA
ncclComm* Communicator::nccl_comm(int device) const { return nccl_handle(state_->nccl_for(device)); }
#endif

}  // namespace mt
