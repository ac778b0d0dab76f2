// `moetrain bench ops`: measures the GPU's ceilings (device-to-device copy bandwidth, cuBLAS's own bf16
// GEMM rate) and then our kernels at training sizes against them, printing a Markdown table.
// Inputs are random normal values (constant data can run faster than real data); each row's time is the
// median over iterations timed one by one with CUDA events, after a warm-up. Needs a GPU.
#include <cmath>
#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

#include "bench_common.h"
#include "commands.h"
#include "mt/core/device.h"
#include "mt/core/error.h"

#ifdef MT_WITH_CUDA
#include <cublas_v2.h>

#include "mt/core/cuda_context.h"
#include "mt/graph/grad_mode.h"
#include "mt/ops/attention_backend.h"
#include "mt/ops/kernel_table.h"
#include "mt/ops/matmul_tuning.h"
#include "mt/ops/ops.h"
#endif

namespace mt::cli {
namespace {

#ifdef MT_WITH_CUDA

struct CublasDeleter {
  void operator()(cublasHandle_t h) const { cublasDestroy(h); }
};
using CublasHandle = std::unique_ptr<std::remove_pointer_t<cublasHandle_t>, CublasDeleter>;

class OpsBench {
 public:
  explicit OpsBench(const BenchCommon& o) : opt_(o), dev_(Device::cuda(o.device)) {
    stream_ = current_stream(o.device);
  }

  void run() {
    cudaDeviceProp prop{};
    MT_CUDA_CHECK(cudaGetDeviceProperties(&prop, opt_.device));
    std::printf("# moetrain bench ops on %s (cuda:%d), %d iterations after %d warm-up\n\n", prop.name, opt_.device,
                opt_.iters, opt_.warmup);
    std::printf("| op | size | dtype | time (ms) | rate | %% of ceiling |\n|---|---|---|---:|---:|---:|\n");
    // Bandwidth rows right after the copy ceiling they are compared with, matrix-unit rows last: under a
    // sustained GEMM the H200 draws ~520 W and its SM clock drops from 1980 to ~1450 MHz, and the row
    // kernels measured just after the GEMMs ran up to 20% slower (bench/NOTES.md, 2026-11-28).
    copy_ceiling();
    layer_norm();
    softmax();
    cross_entropy();
    distillation();
    adamw();
    elementwise();
    linear();
    attention();
  }

 private:
  double time_ms(const std::function<void()>& fn) { return time_interleaved(opt_, {fn})[0]; }

  // A device tensor of N(0, 1) values: inputs.
  Tensor random(const Shape& shape, DType dtype) { return mt::randn(shape, gen_, {dtype, dev_}); }

  // A device tensor with every byte set to `byte`: outputs, integer targets, zeroed optimizer moments.
  Tensor filled(const Shape& shape, DType dtype, int byte = 0) {
    Tensor t = Tensor::empty(shape, dtype, dev_);
    MT_CUDA_CHECK(cudaMemsetAsync(t.data_ptr(), byte, t.nbytes(), stream_));
    return t;
  }

  // What a row's `work` counts.
  enum class Work { kBytes, kFlops };

  // One table row: `work` bytes or FLOPs done in `ms`, as a rate and as a share of `ceiling`.
  static void print_row(const std::string& op, const std::string& size, const char* dtype, double ms, double work,
                        Work unit, double ceiling) {
    const bool flops = unit == Work::kFlops;
    double rate = work / (ms * 1e-3) / (flops ? 1e12 : 1e9);
    std::string pct = ceiling > 0 ? std::to_string(static_cast<int>(100.0 * rate / ceiling + 0.5)) + "%" : "-";
    std::printf("| %s | %s | %s | %.3f | %.1f %s | %s |\n", op.c_str(), size.c_str(), dtype, ms, rate,
                flops ? "TFLOP/s" : "GB/s", pct.c_str());
    std::fflush(stdout);
  }

  // A timed table row; a row whose op fails prints the error instead of a time.
  void row(const std::string& op, const std::string& size, const char* dtype, const std::function<void()>& fn,
           double work, Work unit, double ceiling) {
    try {
      print_row(op, size, dtype, time_ms(fn), work, unit, ceiling);
    } catch (const Error& e) {
      std::printf("| %s | %s | %s | - | failed: %s | - |\n", op.c_str(), size.c_str(), dtype, e.what());
      std::fflush(stdout);
    }
  }

  void copy_ceiling() {
    size_t bytes = size_t{2} << 30;
    Tensor a = filled({static_cast<int64_t>(bytes)}, DType::kBool), b = filled({static_cast<int64_t>(bytes)}, DType::kBool);
    double ms = time_ms([&] {
      MT_CUDA_CHECK(cudaMemcpyAsync(b.data_ptr(), a.data_ptr(), bytes, cudaMemcpyDeviceToDevice, stream_));
    });
    copy_gbs_ = 2.0 * bytes / (ms * 1e-3) / 1e9;  // read + written
    std::printf("| copy D2D (ceiling) | 2 GiB | bytes | %.3f | %.1f GB/s | 100%% |\n", ms, copy_gbs_);
  }

  // mt::linear at 8192^3 against cublasGemmEx doing the same x @ w^T (Note [Row-major GEMM on cuBLASLt]
  // in src/ops/cuda/matmul_cuda.cpp: cuBLAS's A is w transposed, its B is x), timed interleaved.
  void linear() {
    const int n = 8192;
    const double flop = 2.0 * n * n * n;
    Tensor x = random({n, n}, DType::kBF16), w = random({n, n}, DType::kBF16), bias = random({n}, DType::kBF16);
    Tensor c = filled({n, n}, DType::kBF16);
    cublasHandle_t raw = nullptr;
    MT_CUBLAS_CHECK(cublasCreate(&raw));
    CublasHandle handle(raw);
    MT_CUBLAS_CHECK(cublasSetStream(raw, stream_));
    float alpha = 1.0f, beta = 0.0f;
    auto cublas = [&] {
      MT_CUBLAS_CHECK(cublasGemmEx(raw, CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &alpha, w.data_ptr(), CUDA_R_16BF, n,
                                   x.data_ptr(), CUDA_R_16BF, n, &beta, c.data_ptr(), CUDA_R_16BF, n,
                                   CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    };
    std::vector<double> ms =
        time_interleaved(opt_, {cublas, [&] { mt::linear(x, w); }, [&] { mt::linear(x, w, bias); }});
    cublas_tflops_ = flop / (ms[0] * 1e-3) / 1e12;
    print_row("cublasGemmEx x @ w^T (ceiling)", "8192^3", "bf16", ms[0], flop, Work::kFlops, cublas_tflops_);
    print_row("linear (mt::linear, cuBLASLt)", "8192^3", "bf16", ms[1], flop, Work::kFlops, cublas_tflops_);
    print_row("linear + bias epilogue", "8192^3", "bf16", ms[2], flop, Work::kFlops, cublas_tflops_);
    // Note [Timing the heuristic's candidates] in src/ops/cuda/matmul_cuda.cpp: off by default. The timed
    // choice stays with the plan, so this row comes last, against cuBLAS interleaved with it again.
    set_matmul_autotune(true);
    mt::linear(x, w);
    set_matmul_autotune(false);
    ms = time_interleaved(opt_, {cublas, [&] { mt::linear(x, w); }});
    print_row("linear, timed candidates (MT_MATMUL_AUTOTUNE=1)", "8192^3", "bf16", ms[1], flop, Work::kFlops,
              flop / (ms[0] * 1e-3) / 1e12);
  }

  void layer_norm() {
    const int64_t m = 65536, n = 1024;
    Tensor x = random({m, n}, DType::kBF16), w = random({n}, DType::kBF16), b = random({n}, DType::kBF16);
    Tensor y = filled({m, n}, DType::kBF16), mean = filled({m}, DType::kF32), rstd = filled({m}, DType::kF32);
    auto fwd = kernels().layer_norm_forward.get(dev_, "layer_norm");
    auto bwd = kernels().layer_norm_backward.get(dev_, "layer_norm_backward");
    double mn = static_cast<double>(m) * n;
    row("layer_norm fwd", "65536 x 1024", "bf16", [&] { fwd(x, w, b, 1e-5, y, mean, rstd); }, mn * 4 + m * 8, Work::kBytes,
        copy_gbs_);
    Tensor dy = random({m, n}, DType::kBF16), dx = filled({m, n}, DType::kBF16), dw = filled({n}, DType::kBF16), db = filled({n}, DType::kBF16);
    row("layer_norm bwd", "65536 x 1024", "bf16", [&] { bwd(dy, x, w, mean, rstd, dx, dw, db); }, mn * 6 + m * 8,
        Work::kBytes, copy_gbs_);
    // The residual add fused in (Note [Residual add fused with LayerNorm]): x and r in, h and y out; dy, h
    // and dh in, dx out.
    auto add_fwd = kernels().add_layer_norm_forward.get(dev_, "add_layer_norm");
    auto add_bwd = kernels().add_layer_norm_backward.get(dev_, "add_layer_norm_backward");
    Tensor r = random({m, n}, DType::kBF16), h = filled({m, n}, DType::kBF16), dh = random({m, n}, DType::kBF16);
    row("add_layer_norm fwd", "65536 x 1024", "bf16", [&] { add_fwd(x, r, w, b, 1e-5, h, y, mean, rstd); },
        mn * 8 + m * 8, Work::kBytes, copy_gbs_);
    row("add_layer_norm bwd", "65536 x 1024", "bf16", [&] { add_bwd(dy, dh, h, w, mean, rstd, dx, dw, db); },
        mn * 8 + m * 8, Work::kBytes, copy_gbs_);
  }

  void softmax() {
    const int64_t m = 65536, n = 1024;
    Tensor x = random({m, n}, DType::kBF16), y = filled({m, n}, DType::kBF16), g = random({m, n}, DType::kBF16);
    auto fwd = kernels().softmax.get(dev_, "softmax");
    auto bwd = kernels().softmax_backward.get(dev_, "softmax_backward");
    double mn = static_cast<double>(m) * n;
    row("softmax fwd", "65536 x 1024", "bf16", [&] { fwd(x, y, SoftmaxKind::kSoftmax); }, mn * 4, Work::kBytes, copy_gbs_);
    fwd(x, y, SoftmaxKind::kSoftmax);  // a real softmax output for the backward
    Tensor dx = filled({m, n}, DType::kBF16);
    row("softmax bwd", "65536 x 1024", "bf16", [&] { bwd(g, y, dx, SoftmaxKind::kSoftmax); }, mn * 6, Work::kBytes, copy_gbs_);
  }

  void cross_entropy() {
    const int64_t rows = 16384, vocab = 50304;
    Tensor logits = random({rows, vocab}, DType::kBF16), targets = filled({rows}, DType::kI64);
    Tensor losses = filled({rows}, DType::kF32), lse = filled({rows}, DType::kF32), grad = random({rows}, DType::kF32);
    Tensor dlogits = filled({rows, vocab}, DType::kBF16);
    auto fwd = kernels().cross_entropy_forward.get(dev_, "cross_entropy");
    auto bwd = kernels().cross_entropy_backward.get(dev_, "cross_entropy_backward");
    double nv = static_cast<double>(rows) * vocab;
    row("cross_entropy fwd", "16384 x 50304", "bf16", [&] { fwd(logits, targets, -100, losses, lse); }, nv * 2, Work::kBytes,
        copy_gbs_);
    row("cross_entropy bwd", "16384 x 50304", "bf16", [&] { bwd(logits, targets, -100, lse, grad, dlogits); }, nv * 4,
        Work::kBytes, copy_gbs_);
    // The fused head loss's kernel (Note [Fused LM head loss]) reads the logits and writes P over them: after
    // the first run it works on the P of the run before, which costs the same.
    auto with_grad = kernels().cross_entropy_with_grad.get(dev_, "cross_entropy_with_grad");
    row("cross_entropy with grad", "16384 x 50304", "bf16", [&] { with_grad(logits, targets, -100, losses); }, nv * 4,
        Work::kBytes, copy_gbs_);
  }

  // Student and teacher logits of a GPT-2 batch (16 x 1024 tokens) at T 2.
  void distillation() {
    const int64_t rows = 16384, vocab = 50304;
    Tensor student = random({rows, vocab}, DType::kBF16), teacher = random({rows, vocab}, DType::kBF16);
    Tensor kl = filled({rows}, DType::kF32), lse_s = filled({rows}, DType::kF32), lse_t = filled({rows}, DType::kF32);
    Tensor grad = random({rows}, DType::kF32), dstudent = filled({rows, vocab}, DType::kBF16);
    auto fwd = kernels().distillation_forward.get(dev_, "distillation_loss");
    auto bwd = kernels().distillation_backward.get(dev_, "distillation_loss backward");
    double nv = static_cast<double>(rows) * vocab;
    row("distillation fwd", "16384 x 50304", "bf16", [&] { fwd(student, teacher, 0.5, kl, lse_s, lse_t); }, nv * 4,
        Work::kBytes, copy_gbs_);
    row("distillation bwd", "16384 x 50304", "bf16",
        [&] { bwd(student, teacher, 0.5, lse_s, lse_t, grad, dstudent); }, nv * 6, Work::kBytes, copy_gbs_);
  }

  void attention() {
    attention_rows(16, 12, 1024, 64);
    attention_rows(16, 6, 1024, 128);
    attention_rows(8, 16, 2048, 64);
  }

  // Rows for cuDNN's fused SDPA and our kernels (mt/ops/attention_backend.h) on the same inputs. FLOPs:
  // the forward's two GEMMs over the causal half, 2 * 2 B H T^2 D / 2 = 2 B H T^2 D; the backward 2.5x
  // that (five GEMMs, one of them recomputing Q K^T), as FlashAttention counts.
  void attention_rows(int64_t b, int64_t h, int64_t t, int64_t d) {
    Shape s{b, h, t, d};
    Tensor q = random(s, DType::kBF16), k = random(s, DType::kBF16), v = random(s, DType::kBF16);
    Tensor out = filled(s, DType::kBF16), lse = filled({b, h, t}, DType::kF32), dout = random(s, DType::kBF16);
    Tensor dq = filled(s, DType::kBF16), dk = filled(s, DType::kBF16), dv = filled(s, DType::kBF16);
    auto fwd = kernels().attention_forward.get(dev_, "attention");
    auto bwd = kernels().attention_backward.get(dev_, "attention_backward");
    double flops = 2.0 * b * h * t * t * d;
    double scale = 1.0 / std::sqrt(static_cast<double>(d));
    std::string size = "B" + std::to_string(b) + " H" + std::to_string(h) + " T" + std::to_string(t) + " D" +
                       std::to_string(d);
    AttentionBackend saved_backend = attention_backend();
    Determinism saved_determinism = attention_determinism();
    auto on = [](AttentionBackend backend, Determinism determinism, const std::function<void()>& fn) {
      return [=] {
        set_attention_backend(backend);
        set_attention_determinism(determinism);
        fn();
      };
    };
    auto run_fwd = [&] { fwd(q, k, v, scale, out, lse); };
    auto run_bwd = [&] { bwd(q, k, v, out, dout, lse, scale, dq, dk, dv); };
    row("causal attention fwd (cudnn)", size, "bf16", on(AttentionBackend::kCudnn, Determinism::kRequired, run_fwd),
        flops, Work::kFlops, cublas_tflops_);
    row("causal attention fwd (flash)", size, "bf16", on(AttentionBackend::kFlash, Determinism::kRequired, run_fwd),
        flops, Work::kFlops, cublas_tflops_);
    on(AttentionBackend::kFlash, Determinism::kRequired, run_fwd)();  // the backwards read a real out and lse
    row("causal attention bwd (cudnn, deterministic)", size, "bf16",
        on(AttentionBackend::kCudnn, Determinism::kRequired, run_bwd), 2.5 * flops, Work::kFlops, cublas_tflops_);
    row("causal attention bwd (cudnn, atomic dQ)", size, "bf16",
        on(AttentionBackend::kCudnn, Determinism::kNotRequired, run_bwd), 2.5 * flops, Work::kFlops, cublas_tflops_);
    row("causal attention bwd (flash)", size, "bf16", on(AttentionBackend::kFlash, Determinism::kRequired, run_bwd),
        2.5 * flops, Work::kFlops, cublas_tflops_);
    set_attention_backend(saved_backend);
    set_attention_determinism(saved_determinism);
  }

  void adamw() {
    const int64_t n = 124'000'000;
    std::vector<OptimTensors> ts{{random({n}, DType::kBF16), random({n}, DType::kBF16), filled({n}, DType::kF32),
                                  filled({n}, DType::kF32), random({n}, DType::kF32)}};
    auto step = kernels().adamw.get(dev_, "adamw");
    AdamWHyper hyper{3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 0.1f, 0.05f, 0.5f};  // a clipped step
    // Per parameter: grad 2 B read; master, exp_avg, exp_avg_sq 4 B read + written each; param 2 B written.
    row("adamw (bf16 + f32 master)", "124M params", "bf16", [&] { step(ts, hyper); }, n * 28.0, Work::kBytes, copy_gbs_);
  }

  void elementwise() {
    const int64_t n = int64_t{1} << 28;
    Tensor a = random({n}, DType::kBF16), b = random({n}, DType::kBF16);
    row("add", "2^28", "bf16", [&] { mt::add(a, b); }, n * 6.0, Work::kBytes, copy_gbs_);
    row("gelu", "2^28", "bf16", [&] { mt::gelu(a); }, n * 4.0, Work::kBytes, copy_gbs_);
    row("copy (clone)", "2^28", "bf16", [&] { a.clone(); }, n * 4.0, Work::kBytes, copy_gbs_);
  }

  BenchCommon opt_;
  Device dev_;
  cudaStream_t stream_ = nullptr;
  NoGradGuard no_grad_;
  Generator gen_{1234};
  double copy_gbs_ = 0, cublas_tflops_ = 0;
};

#endif

}  // namespace

void add_bench_command(CLI::App& app) {
  CLI::App* bench = app.add_subcommand("bench", "Measure performance on this machine");
  bench->require_subcommand(1);
  auto opt = std::make_shared<BenchCommon>();
  CLI::App* ops = bench->add_subcommand(
      "ops", "GPU ceilings (copy bandwidth, cuBLAS bf16 GEMM) and our kernels at training sizes, as a Markdown table");
  add_bench_common_options(*ops, *opt);
  ops->callback([opt] {
    require_gpu("bench ops", *opt);
#ifdef MT_WITH_CUDA
    OpsBench(*opt).run();
#endif
  });
  add_bench_moe_command(*bench);
  add_bench_step_command(*bench);
  add_bench_comm_command(*bench);
  add_bench_checkpoint_command(*bench);
}

}  // namespace mt::cli
