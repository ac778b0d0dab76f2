// `moetrain bench comm`: bus bandwidth of all-reduce, all-gather, reduce-scatter and all-to-all through our
// Communicator next to the same collective called directly (NCCL on the Communicator's own NCCL
// communicator for CUDA tensors, MPI on MPI_COMM_WORLD for CPU tensors), and the MoE dispatcher's exchange
// through the autograd all_to_all the MoE layer calls, as one Markdown table. Runs on every rank.
#include <mpi.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "cli_ranges.h"
#include "commands.h"
#include "mpi_job.h"
#include "mt/core/device.h"
#include "mt/core/device_copy.h"
#include "mt/core/error.h"
#include "mt/dist/communicator.h"
#include "mt/dist/expert_parallel.h"
#include "mt/ops/ops.h"

#ifdef MT_WITH_CUDA
#include <nccl.h>

#include "mt/core/cuda_context.h"
#endif

namespace mt::cli {
namespace {

struct BenchCommOptions {
  std::vector<std::string> sizes;  // empty: the device's default list
  std::string device = "auto";
  int iters = 0;  // 0: 20 on GPUs, 5 on CPU ranks
  int warmup = 2;
  int64_t moe_tokens = 16384, moe_d_model = 768;
};

constexpr int kBlocks = 3;  // timed blocks per variant, interleaved ours/direct; the median block is reported

class CommBench {
 public:
  CommBench(const BenchCommOptions& o, const Communicator& world) : opt_(o), world_(world), n_(world.size()) {
    MT_CHECK(opt_.device == "auto" || opt_.device == "cpu" || opt_.device == "cuda",
             "bench comm: --device: expected auto, cpu or cuda, got '", opt_.device, "'");
    const bool gpu = opt_.device == "cuda" || (opt_.device == "auto" && cuda_available());
    MT_CHECK(!gpu || cuda_available(), "bench comm: --device cuda but no GPU is visible");
    dev_ = gpu ? Device::cuda(world.local_rank() % cuda_device_count()) : Device::cpu();
#ifdef MT_WITH_CUDA
    if (dev_.is_cuda()) set_device(dev_.index);
#endif
    if (opt_.iters == 0) opt_.iters = gpu ? 20 : 5;
    if (opt_.sizes.empty())
      opt_.sizes = gpu ? std::vector<std::string>{"1MB", "4MB", "16MB", "64MB", "256MB", "1GB"}
                       : std::vector<std::string>{"1MB", "4MB", "16MB"};
    for (const std::string& size : opt_.sizes) {
      int64_t bytes = parse_byte_size("bench comm: --sizes", size);
      MT_CHECK(bytes >= 1024 && bytes <= (int64_t{1} << 30), "bench comm: --sizes: each size must be in [1KB, 1GB], got '",
               size, "'");
      bytes_.push_back(bytes);
    }
    MT_CHECK(n_ >= 2, "bench comm: measures collectives between ranks; run it under mpirun with 2 or more ranks "
             "(one per GPU), got ", n_);
    MT_CHECK(opt_.moe_tokens % n_ == 0, "bench comm: --moe-tokens ", opt_.moe_tokens, " does not split over ", n_,
             " ranks");
  }

  void run() {
    const bool lead = world_.rank() == 0;
    if (lead) {
      std::printf("# moetrain bench comm: %d rank(s) on %s, %d iterations x %d blocks after %d warm-up\n\n", n_,
                  dev_.is_cuda() ? "GPUs (NCCL)" : "CPUs (MPI)", opt_.iters, kBlocks, opt_.warmup);
      std::printf("| collective | size | our busbw (GB/s) | direct busbw (GB/s) | ours / direct |\n"
                  "|---|---:|---:|---:|---:|\n");
    }
    for (size_t i = 0; i < bytes_.size(); ++i)
      collective_rows(opt_.sizes[i], bytes_[i] / 4 / n_ * n_);  // f32 elements, a multiple of the rank count
    moe_row();
    if (lead) {
      std::printf("\nsize: the buffer one rank holds (all-reduce: the reduced tensor; all-gather: the gathered output; "
                  "reduce-scatter: the input; all-to-all: what one rank sends), f32, MB = 2^20 bytes. algbw = size / "
                  "time; busbw as NCCL-tests defines it, n = %d ranks: all-reduce algbw * 2(n-1)/n, all-gather and "
                  "reduce-scatter algbw * (n-1)/n, all-to-all algbw * (n-1)/n. Time: each block of %d calls ends with "
                  "a device sync, the slowest rank's time counts, the median of %d blocks. Direct: %s. MoE dispatch: "
                  "a (tokens, d_model) bf16 buffer exchanged by mt::all_to_all (the MoE layer's call) vs the same "
                  "bytes exchanged directly.\n",
                  n_, opt_.iters, kBlocks,
                  dev_.is_cuda() ? "ncclAllReduce / ncclAllGather / ncclReduceScatter / grouped ncclSend+ncclRecv on "
                                   "the Communicator's own NCCL communicator and stream"
                                 : "MPI_Allreduce / MPI_Allgather / MPI_Reduce_scatter_block / MPI_Alltoall on "
                                   "MPI_COMM_WORLD");
      std::fflush(stdout);
    }
  }

 private:
  using Fn = std::function<void()>;

  Tensor zeros_of(int64_t numel, DType dtype) const { return mt::zeros({numel}, {dtype, dev_}); }

  void collective_rows(const std::string& size, int64_t numel) {
    const double bytes = numel * 4.0;  // the buffer the size names
    const double nm1 = (n_ - 1.0) / n_;
    {
      Tensor t = zeros_of(numel, DType::kF32);  // zeros: repeated sums stay finite
      row("all-reduce", size, bytes, 2 * nm1, [&] { world_.all_reduce(t, ReduceKind::kSum); },
          direct_all_reduce(t));
    }
    {
      Tensor in = zeros_of(numel / n_, DType::kF32), out = zeros_of(numel, DType::kF32);
      row("all-gather", size, bytes, nm1, [&] { world_.all_gather(in, out); }, direct_all_gather(in, out));
    }
    {
      Tensor in = zeros_of(numel, DType::kF32), out = zeros_of(numel / n_, DType::kF32);
      row("reduce-scatter", size, bytes, nm1, [&] { world_.reduce_scatter(in, out, ReduceKind::kSum); },
          direct_reduce_scatter(in, out));
    }
    {
      Tensor in = zeros_of(numel, DType::kF32), out = zeros_of(numel, DType::kF32);
      row("all-to-all", size, bytes, nm1, [&] { world_.all_to_all(in, out); }, direct_all_to_all(in, out));
    }
  }

  // The dispatcher's exchange of a real layer: (tokens, d_model) bf16, tokens / n to each rank.
  void moe_row() {
    Tensor x = mt::zeros({opt_.moe_tokens, opt_.moe_d_model}, {DType::kBF16, dev_});
    Tensor out = mt::zeros({opt_.moe_tokens, opt_.moe_d_model}, {DType::kBF16, dev_});
    const std::string size = std::to_string(opt_.moe_tokens) + " x " + std::to_string(opt_.moe_d_model) + " bf16";
    row("MoE dispatch (mt::all_to_all)", size, static_cast<double>(x.nbytes()), (n_ - 1.0) / n_,
        [&] { mt::all_to_all(x, world_); }, direct_all_to_all(x, out));
  }

  Fn direct_all_reduce(const Tensor& t) const {
#ifdef MT_WITH_CUDA
    if (dev_.is_cuda())
      return [=, this] { nccl(ncclAllReduce(t.data_ptr(), t.data_ptr(), t.numel(), ncclFloat32, ncclSum, comm(), stream())); };
#endif
    return [=] {
      mpi(MPI_Allreduce(MPI_IN_PLACE, t.data_ptr(), static_cast<int>(t.numel()), MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD));
    };
  }

  Fn direct_all_gather(const Tensor& in, const Tensor& out) const {
#ifdef MT_WITH_CUDA
    if (dev_.is_cuda())
      return [=, this] { nccl(ncclAllGather(in.data_ptr(), out.data_ptr(), in.numel(), ncclFloat32, comm(), stream())); };
#endif
    return [=] {
      int bytes = static_cast<int>(in.nbytes());
      mpi(MPI_Allgather(in.data_ptr(), bytes, MPI_BYTE, out.data_ptr(), bytes, MPI_BYTE, MPI_COMM_WORLD));
    };
  }

  Fn direct_reduce_scatter(const Tensor& in, const Tensor& out) const {
#ifdef MT_WITH_CUDA
    if (dev_.is_cuda())
      return [=, this] {
        nccl(ncclReduceScatter(in.data_ptr(), out.data_ptr(), out.numel(), ncclFloat32, ncclSum, comm(), stream()));
      };
#endif
    return [=] {
      mpi(MPI_Reduce_scatter_block(in.data_ptr(), out.data_ptr(), static_cast<int>(out.numel()), MPI_FLOAT, MPI_SUM,
                                   MPI_COMM_WORLD));
    };
  }

  // Any dtype: the chunks are moved as bytes.
  Fn direct_all_to_all(const Tensor& in, const Tensor& out) const {
    const size_t chunk = in.nbytes() / n_;
#ifdef MT_WITH_CUDA
    if (dev_.is_cuda())
      return [=, this] {
        nccl(ncclGroupStart());
        for (int peer = 0; peer < n_; ++peer) {
          nccl(ncclSend(static_cast<const char*>(in.data_ptr()) + peer * chunk, chunk, ncclUint8, peer, comm(), stream()));
          nccl(ncclRecv(static_cast<char*>(out.data_ptr()) + peer * chunk, chunk, ncclUint8, peer, comm(), stream()));
        }
        nccl(ncclGroupEnd());
      };
#endif
    return [=] {
      int bytes = static_cast<int>(chunk);
      mpi(MPI_Alltoall(in.data_ptr(), bytes, MPI_BYTE, out.data_ptr(), bytes, MPI_BYTE, MPI_COMM_WORLD));
    };
  }

  static void mpi(int rc) { MT_CHECK(rc == MPI_SUCCESS, "bench comm: a direct MPI collective failed (", rc, ")"); }
#ifdef MT_WITH_CUDA
  static void nccl(ncclResult_t rc) {
    MT_CHECK(rc == ncclSuccess, "bench comm: a direct NCCL call failed: ", ncclGetErrorString(rc));
  }
  ncclComm_t comm() const { return world_.nccl_comm(dev_.index); }
  cudaStream_t stream() const { return current_stream(dev_.index); }
#endif

  // Seconds per call of one block of opt_.iters calls, the slowest rank's.
  double block_seconds(const Fn& fn) const {
    world_.barrier();
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < opt_.iters; ++i) fn();
    if (dev_.is_cuda()) synchronize(dev_);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() / opt_.iters;
    return world_.all_reduce(s, ReduceKind::kMax);
  }

  // Times `ours` and `direct` in interleaved blocks and prints one row. `bytes` is the size the row
  // names, `factor` the busbw factor over algbw.
  void row(const std::string& name, const std::string& size, double bytes, double factor, const Fn& ours,
           const Fn& direct) const {
    for (int i = 0; i < opt_.warmup; ++i) {
      ours();
      direct();
    }
    std::vector<double> t_ours, t_direct;
    for (int b = 0; b < kBlocks; ++b) {
      t_ours.push_back(block_seconds(ours));
      t_direct.push_back(block_seconds(direct));
    }
    auto median = [](std::vector<double> v) {
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
      return v[v.size() / 2];
    };
    const double ours_bw = bytes * factor / median(t_ours) / 1e9, direct_bw = bytes * factor / median(t_direct) / 1e9;
    if (world_.rank() == 0) {
      std::printf("| %s | %s | %.2f | %.2f | %.2f |\n", name.c_str(), size.c_str(), ours_bw, direct_bw,
                  direct_bw > 0 ? ours_bw / direct_bw : 0.0);
      std::fflush(stdout);
    }
  }

  BenchCommOptions opt_;
  const Communicator& world_;
  int n_;
  std::vector<int64_t> bytes_;  // of each --sizes entry
  Device dev_ = Device::cpu();
};

}  // namespace

void add_bench_comm_command(CLI::App& bench) {
  auto opt = std::make_shared<BenchCommOptions>();
  CLI::App* c = bench.add_subcommand(
      "comm", "Bus bandwidth of all-reduce, all-gather, reduce-scatter, all-to-all and the MoE dispatch exchange "
              "through our Communicator vs NCCL (GPUs) or MPI (CPU ranks) called directly, as a Markdown table; "
              "run under mpirun, one rank per GPU");
  c->add_option("--sizes", opt->sizes, "Buffer sizes per rank, e.g. 1MB,64MB,1GB (default 1MB..1GB x4 on GPUs, "
                                       "1MB,4MB,16MB on CPU ranks)")
      ->delimiter(',');
  c->add_option("--device", opt->device, "auto (GPUs when visible), cpu or cuda")->capture_default_str();
  c->add_option("--iters", opt->iters, "Calls per timed block (default 20 on GPUs, 5 on CPU ranks)")
      ->check(CLI::NonNegativeNumber);
  c->add_option("--warmup", opt->warmup, "Untimed calls of each variant first")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  c->add_option("--moe-tokens", opt->moe_tokens, "Tokens of the MoE dispatch row (split evenly over the ranks)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--moe-d-model", opt->moe_d_model, "d_model of the MoE dispatch row")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->callback([opt] { run_mpi_job([&](const Communicator& world) { CommBench(*opt, world).run(); }); });
}

}  // namespace mt::cli
