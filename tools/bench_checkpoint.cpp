// `moetrain bench checkpoint`: writes and reads a sharded checkpoint (Note [Sharded checkpoints]) of an
// expert-heavy model on every rank, reporting per rank the bytes, GB/s and peak host memory (VmHWM) of the
// write and of the read, next to the rank's own share. Run under mpirun; the folder is removed after.

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "mpi_job.h"
#include "mt/io/checkpoint_source.h"
#include "mt/io/sharded_checkpoint.h"

namespace mt::cli {
namespace {

struct BenchCheckpointOptions {
  std::string dir;
  int layers = 8, experts = 8;
  int64_t d_model = 2048, ffn = 8192;
  bool keep = false;
};

// Peak resident memory of this process, bytes (VmHWM).
double peak_rss() {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);)
    if (line.rfind("VmHWM:", 0) == 0) return std::stod(line.substr(6)) * 1024;
  return 0;
}

// Starts a new peak: VmHWM := current resident memory (Linux clear_refs "5").
void reset_peak_rss() { std::ofstream("/proc/self/clear_refs") << "5"; }

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// The pieces rank r of n holds of a model of `layers` MoE layers: experts w1 (E, d, f) and w2 (E, f, d)
// split over the ranks (ep = n), and the replicated layer norm (d) and router (d, E). Filled with a
// cheap, varied pattern (what is written must not be zero pages).
std::vector<ShardPiece> model_pieces(const BenchCheckpointOptions& o, int r, int n) {
  const int64_t e = o.experts / n, d = o.d_model, f = o.ffn;
  std::vector<ShardPiece> out;
  auto add = [&](const std::string& name, Shape local, std::vector<int64_t> full, int64_t row0) {
    Tensor t = Tensor::empty(local, DType::kF32);
    auto* p = static_cast<uint32_t*>(t.data_ptr());
    for (int64_t i = 0; i < t.numel(); ++i) p[i] = static_cast<uint32_t>(i * 2654435761u) >> 2;  // finite floats
    out.push_back({name, t, std::move(full), row0});
  };
  for (int l = 0; l < o.layers; ++l) {
    const std::string b = "blocks." + std::to_string(l) + ".";
    add(b + "ln.weight", {d}, {d}, 0);
    add(b + "moe.router.weight", {d, o.experts}, {d, o.experts}, 0);
    add(b + "moe.experts.w1", {e, d, f}, {o.experts, d, f}, e * r);
    add(b + "moe.experts.w2", {e, f, d}, {o.experts, f, d}, e * r);
  }
  return out;
}

void run_bench(const BenchCheckpointOptions& o, const Communicator& world) {
  const int n = world.size(), r = world.rank();
  MT_CHECK(o.experts % n == 0, "bench checkpoint: --experts ", o.experts, " does not split over ", n, " ranks");
  MT_CHECK(!o.dir.empty(), "bench checkpoint: --dir is required");
  const std::filesystem::path folder = std::filesystem::path(o.dir) / "bench_step_00000000";
  std::vector<ShardPiece> held = model_pieces(o, r, n);
  double held_bytes = 0, params = 0;
  for (const ShardPiece& p : held) {
    held_bytes += static_cast<double>(p.data.nbytes());
    int64_t numel = 1;
    for (int64_t s : p.full_shape) numel *= s;
    params += static_cast<double>(numel);
  }
  // What this rank writes: its expert chunks and its assigned share of the replicated tensors.
  world.barrier();
  reset_peak_rss();
  const double rss_before = peak_rss();
  const double t0 = now();
  write_sharded_checkpoint(folder, world, held, [](CheckpointWriter& w) { w.write_int("step", 0); });
  const double t_write = now() - t0;  // every rank waits for the index: the checkpoint's time
  const double write_peak = peak_rss();
  const double written = static_cast<double>(std::filesystem::file_size(folder / sharded_part_name(r, n)));

  world.barrier();
  reset_peak_rss();
  const double t1 = now();
  {
    const CheckpointSource src(folder, Verify::kOnRead);  // as a resume opens it: each piece checked when read
    for (const ShardPiece& p : held) {
      const int64_t rows = p.full_shape.empty() ? 1 : p.data.size(0);
      src.read_rows(p.name, DType::kF32, p.full_shape, p.row0, rows, p.data.data_ptr());
    }
  }
  const double t_read = now() - t1;
  const double read_peak = peak_rss();
  world.barrier();

  Tensor mine = Tensor::from_vector<double>({held_bytes, written, t_write, write_peak, held_bytes, t_read, read_peak,
                                             rss_before},
                                            {8});
  Tensor all = Tensor::empty({8 * n}, DType::kF64);
  world.all_gather(mine, all);
  if (r == 0) {
    const std::vector<double> v = all.to_vector<double>();
    const double gb = 1e9;
    std::printf("# moetrain bench checkpoint: %.3fB parameters (f32, no optimizer state), %d MoE layers x %d experts "
                "(d %lld, ffn %lld), %d ranks, folder %s\n\n",
                params / 1e9, o.layers, o.experts, static_cast<long long>(o.d_model), static_cast<long long>(o.ffn), n,
                folder.string().c_str());
    std::printf("| rank | share (GB) | part written (GB) | write (s) | write GB/s | write VmHWM (GB) | VmHWM / share "
                "| write extra (MB) | read (GB) | read (s) | read GB/s | read VmHWM (GB) | VmHWM / share |\n"
                "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (int k = 0; k < n; ++k) {
      const double* x = &v[static_cast<size_t>(8 * k)];
      std::printf("| %d | %.2f | %.2f | %.1f | %.3f | %.2f | %.2f | %.0f | %.2f | %.1f | %.3f | %.2f | %.2f |\n", k,
                  x[0] / gb, x[1] / gb, x[2], x[1] / gb / x[2], x[3] / gb, x[3] / x[0], (x[3] - x[7]) / 1e6, x[4] / gb,
                  x[5], x[4] / gb / x[5], x[6] / gb, x[6] / x[0]);
    }
    std::printf("\nshare: the bytes of the tensors the rank holds (its experts and the replicated tensors); part "
                "written: its part file; write: from the call until the index is committed (every part fsynced), "
                "so GB/s = part / that time, all ranks writing at once; read: a CheckpointSource opened as a resume "
                "opens it and the rank's own rows read back into its tensors, each piece's CRC checked. VmHWM: the "
                "peak resident memory of the process, reset (clear_refs) before each phase, so it includes the held "
                "tensors, MPI and the binary; write extra: the write's peak above the resident memory before it.\n");
    std::fflush(stdout);
  }
  world.barrier();
  if (r == 0 && !o.keep) std::filesystem::remove_all(folder);
}

}  // namespace

void add_bench_checkpoint_command(CLI::App& bench) {
  auto opt = std::make_shared<BenchCheckpointOptions>();
  CLI::App* c = bench.add_subcommand(
      "checkpoint", "Write and read a sharded checkpoint of an expert-heavy model on every rank: GB/s and peak host "
                    "memory per rank, as a Markdown table; run under mpirun");
  c->add_option("--dir", opt->dir, "Folder to write the checkpoint in (removed after unless --keep)")->required();
  c->add_option("--layers", opt->layers, "MoE layers")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--experts", opt->experts, "Experts per layer (a multiple of the rank count)")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  c->add_option("--d-model", opt->d_model, "Model width")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_option("--ffn", opt->ffn, "Expert hidden width")->check(CLI::PositiveNumber)->capture_default_str();
  c->add_flag("--keep", opt->keep, "Keep the checkpoint folder");
  c->callback([opt] { run_mpi_job([&](const Communicator& world) { run_bench(*opt, world); }); });
}

}  // namespace mt::cli
