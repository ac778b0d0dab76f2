// CPU batched GEMM on OpenBLAS (cblas_sgemm / cblas_dgemm); bf16/f16 go through f32 buffers and
// are rounded once. Bias is an epilogue folded into C before the GEMM (beta = 1).
#include <cblas.h>

#include <climits>
#include <vector>

#include "cpu_kernels.h"
#include "cpu_loops.h"

namespace mt::cpu {

namespace {

// Note [CPU GEMM threading]: we link Debian's OpenMP build of OpenBLAS (libopenblas-openmp-dev),
// so GEMMs and our parallel_range loops share one libgomp pool, sized by OMP_NUM_THREADS, instead
// of two pools spinning against each other on the same cores. A GEMM called inside a parallel
// region runs single-threaded (OpenBLAS checks omp_in_parallel), which is how small batched
// GEMMs are spread over the batch.
//
// Batch entries with M*N*K below this are spread over the batch, one thread per GEMM; larger
// ones run one after another, each on all threads. OpenBLAS itself runs GEMMs below 2^18
// (its SMP threshold) on one thread, so the batch is the only parallelism they have.
constexpr int64_t kThreadedGemmWork = int64_t{1} << 18;

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const float* a, int lda, const float* b, int ldb,
          float beta, float* c) {
  cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, beta, c, n);
}

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int m, int n, int k, const double* a, int lda, const double* b,
          int ldb, double beta, double* c) {
  cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, 1.0, a, lda, b, ldb, beta, c, n);
}

// c (B, M, N) (+)= op(a) @ op(b) (+ bias) on contiguous buffers of a BLAS type S.
// a_batch / b_batch are 1 (shared by every batch entry) or B; bias_step is 0 for a bias (N) shared by
// every batch entry, n for a per-batch bias (B, N).
template <typename S>
void batched_gemm(const S* a, int64_t a_batch, Transpose ta, const S* b, int64_t b_batch, Transpose tb, S* c,
                  int64_t batch, int64_t m, int64_t n, int64_t k, const S* bias, int64_t bias_step, Accumulate acc) {
  if (bias != nullptr) {
    parallel_range(batch * m, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const S* row_bias = bias + (m > 0 ? r / m : 0) * bias_step;
        for (int64_t j = 0; j < n; ++j) c[r * n + j] = (acc == Accumulate::kYes ? c[r * n + j] : S(0)) + row_bias[j];
      }
    });
  }
  S beta = (bias != nullptr || acc == Accumulate::kYes) ? S(1) : S(0);
  CBLAS_TRANSPOSE ca = ta == Transpose::kYes ? CblasTrans : CblasNoTrans;
  CBLAS_TRANSPOSE cb = tb == Transpose::kYes ? CblasTrans : CblasNoTrans;
  int lda = static_cast<int>(std::max<int64_t>(1, ta == Transpose::kYes ? m : k));
  int ldb = static_cast<int>(std::max<int64_t>(1, tb == Transpose::kYes ? k : n));
  int64_t a_step = a_batch == 1 ? 0 : m * k, b_step = b_batch == 1 ? 0 : k * n;
  auto one = [&](int64_t i) {
    gemm(ca, cb, static_cast<int>(m), static_cast<int>(n), static_cast<int>(k), a + i * a_step, lda, b + i * b_step,
         ldb, beta, c + i * m * n);
  };
  if (batch > 1 && m * n * k < kThreadedGemmWork) {
    parallel_range(batch, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) one(i);
    });
  } else {
    for (int64_t i = 0; i < batch; ++i) one(i);
  }
}

template <typename T>
std::vector<float> to_f32(const Tensor& t) {
  std::vector<float> v(t.numel());
  const T* p = t.data<T>();
  parallel_range(t.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
    for (int64_t i = lo; i < hi; ++i) v[i] = static_cast<float>(p[i]);
  });
  return v;
}

}  // namespace

void matmul(const Tensor& a, Transpose ta, const Tensor& b, Transpose tb, const Tensor& out, const Tensor& bias,
            Accumulate acc) {
  int64_t batch = out.size(0), m = out.size(1), n = out.size(2);
  int64_t k = ta == Transpose::kYes ? a.size(1) : a.size(2);
  MT_CHECK(m <= INT_MAX && n <= INT_MAX && k <= INT_MAX, "matmul: dimensions (M, N, K) = (", m, ", ", n, ", ", k,
           ") exceed the 32-bit BLAS interface");
  MT_CHECK(!bias.defined() || bias.numel() == n || bias.numel() == batch * n, "matmul: bias must be (", n, ") or (",
           batch, ", ", n, "), got ", bias.shape());
  const bool widening = out.dtype() != a.dtype();  // f32 out of half operands (Note [f32 weight gradients])
  MT_CHECK(a.dtype() == b.dtype() && (!widening || (is_half(a.dtype()) && out.dtype() == DType::kF32 && !bias.defined())),
           "matmul: a, b and out must share one dtype (or out f32 from half a and b, without bias), got ",
           a.describe(), ", ", b.describe(), ", ", out.describe());
  int64_t bias_step = bias.defined() && bias.numel() != n ? n : 0;
  dispatch_floating(a.dtype(), "matmul", [&]<typename T>() {
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
      batched_gemm<T>(a.data<T>(), a.size(0), ta, b.data<T>(), b.size(0), tb, out.data<T>(), batch, m, n, k,
                      bias.defined() ? bias.data<T>() : nullptr, bias_step, acc);
    } else {
      std::vector<float> fa = to_f32<T>(a), fb = to_f32<T>(b);
      if (widening) {  // straight into the f32 out
        batched_gemm<float>(fa.data(), a.size(0), ta, fb.data(), b.size(0), tb, out.data<float>(), batch, m, n, k,
                            nullptr, 0, acc);
        return;
      }
      std::vector<float> fc = acc == Accumulate::kYes ? to_f32<T>(out) : std::vector<float>(out.numel());
      std::vector<float> fbias = bias.defined() ? to_f32<T>(bias) : std::vector<float>();
      batched_gemm<float>(fa.data(), a.size(0), ta, fb.data(), b.size(0), tb, fc.data(), batch, m, n, k,
                          bias.defined() ? fbias.data() : nullptr, bias_step, acc);
      T* po = out.data<T>();
      parallel_range(out.numel(), 1 << 16, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) po[i] = static_cast<T>(fc[i]);
      });
    }
  });
}

// No fused GELU GEMMs on the CPU: the op composes them (Note [GELU in the GEMM epilogue]).
bool matmul_bias_gelu(const Tensor&, const Tensor&, Transpose, const Tensor&, const Tensor&, const Tensor&) {
  return false;
}
bool matmul_dgelu_bgrad(const Tensor&, const Tensor&, Transpose, const Tensor&, const Tensor&, const Tensor&) {
  return false;
}

}  // namespace mt::cpu
