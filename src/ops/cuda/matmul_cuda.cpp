// CUDA matmul through cuBLASLt, with the descriptors and the chosen algorithm cached per shape (the
// fastest of the heuristic's top candidates, timed on the first call: Note [Timing the heuristic's candidates]).
// Note [Row-major GEMM on cuBLASLt]: a row-major (r, c) matrix is the column-major (c, r) matrix of the
// same bytes, so out (M, N) = op(a) @ op(b) is computed as the column-major out^T (N, M) =
// op(b)^T @ op(a)^T: cuBLAS's "A" is our b and its "B" is our a, each transposed when ours is. The bias
// (N) is then a per-row vector of out^T, which is what CUBLASLT_EPILOGUE_BIAS adds; a per-batch bias
// (B, N) sets CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE to N.
#include <cublasLt.h>

#include <map>
#include <memory>
#include <mutex>
#include <type_traits>
#include <vector>

#include "bias_add.h"
#include "cuda_launch.h"
#include "cuda_kernels.h"
#include "mt/ops/matmul_tuning.h"

namespace mt::cuda {

namespace {

constexpr size_t kWorkspaceBytes = size_t{32} << 20;
constexpr int kCandidates = 8;      // heuristic results timed per plan
constexpr int kTimedRuns = 2;       // timed runs of each candidate, after one untimed run
constexpr float kMinGain = 0.01f;   // a later candidate must be 1% faster to replace an earlier one

struct DescDeleter {
  void operator()(cublasLtMatmulDesc_t d) const { cublasLtMatmulDescDestroy(d); }
};
struct LayoutDeleter {
  void operator()(cublasLtMatrixLayout_t l) const { cublasLtMatrixLayoutDestroy(l); }
};
struct PreferenceDeleter {
  void operator()(cublasLtMatmulPreference_t p) const { cublasLtMatmulPreferenceDestroy(p); }
};
using MatmulDesc = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulDesc_t>, DescDeleter>;
using MatrixLayout = std::unique_ptr<std::remove_pointer_t<cublasLtMatrixLayout_t>, LayoutDeleter>;
using Preference = std::unique_ptr<std::remove_pointer_t<cublasLtMatmulPreference_t>, PreferenceDeleter>;

// What cuBLASLt does after the product (Note [Row-major GEMM on cuBLASLt]: "bias" is per column of our out).
// kGeluAuxBias: out = gelu(product + bias), aux = product + bias; kDGelu: out = product * gelu'(aux)
// (Note [GELU in the GEMM epilogue] in src/ops/linalg.cpp).
enum class Epilogue : uint8_t { kNone, kBias, kGeluAuxBias, kDGelu };

// Everything the descriptors and the algorithm choice depend on.
struct PlanKey {
  int device;
  DType dtype;      // of a and b (and the bias)
  DType out_dtype;  // dtype, or f32 from half operands (Note [f32 weight gradients] in src/ops/linalg.cpp)
  Transpose ta, tb;
  int64_t m, n, k, batch, stride_a, stride_b;
  Epilogue epilogue;  // asked for; kBias falls back to kNone and add_bias_rows when cuBLASLt has none
  bool bias_batched;  // the bias is (B, N), one row per batch entry
  uint32_t align_a, align_b, align_out;
  auto operator<=>(const PlanKey&) const = default;
};

struct Plan {
  MatmulDesc desc;
  MatrixLayout layout_a, layout_b, layout_out;  // cuBLAS's A (our b), B (our a), C = D (out)
  std::vector<cublasLtMatmulAlgo_t> candidates;  // the heuristic's, its first choice first
  cublasLtMatmulAlgo_t algo{};                   // candidates[0] until timed, then the fastest
  bool timed = false;
  Epilogue epilogue = Epilogue::kNone;  // kNone for a bias: added by add_bias_rows
};

// Largest power of two (up to 256) dividing the address: what cuBLASLt may assume of the pointer.
uint32_t alignment(const void* p) {
  auto u = reinterpret_cast<uintptr_t>(p);
  uint32_t a = 1;
  while (a < 256 && u % (2 * a) == 0) a *= 2;
  return a;
}

cudaDataType_t cuda_type(DType t) {
  switch (t) {
    case DType::kF32: return CUDA_R_32F;
    case DType::kF64: return CUDA_R_64F;
    case DType::kBF16: return CUDA_R_16BF;
    case DType::kF16: return CUDA_R_16F;
    default: MT_FAIL("matmul (cuda): expected a floating dtype (f32, f64, bf16, f16), got ", dtype_name(t));
  }
}

template <typename V>
void set_desc(cublasLtMatmulDesc_t d, cublasLtMatmulDescAttributes_t attr, V value) {
  MT_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(d, attr, &value, sizeof(value)));
}

MatrixLayout make_layout(cudaDataType_t type, int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride) {
  cublasLtMatrixLayout_t l = nullptr;
  MT_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&l, type, static_cast<uint64_t>(rows), static_cast<uint64_t>(cols), ld));
  MatrixLayout layout(l);
  if (batch > 1) {
    auto count = static_cast<int32_t>(batch);
    MT_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof(count)));
    MT_CUBLAS_CHECK(
        cublasLtMatrixLayoutSetAttribute(l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride, sizeof(stride)));
  }
  return layout;
}

// Builds the descriptors and asks the heuristic for its best kCandidates algorithms; false if it has none.
bool build_plan(const PlanKey& key, Epilogue epilogue, Plan& plan) {
  cudaDataType_t type = cuda_type(key.dtype);
  bool f64 = key.dtype == DType::kF64;
  cublasLtMatmulDesc_t d = nullptr;
  MT_CUBLAS_CHECK(cublasLtMatmulDescCreate(&d, f64 ? CUBLAS_COMPUTE_64F : CUBLAS_COMPUTE_32F,
                                           f64 ? CUDA_R_64F : CUDA_R_32F));
  plan.desc.reset(d);
  set_desc(d, CUBLASLT_MATMUL_DESC_TRANSA, key.tb == Transpose::kYes ? CUBLAS_OP_T : CUBLAS_OP_N);
  set_desc(d, CUBLASLT_MATMUL_DESC_TRANSB, key.ta == Transpose::kYes ? CUBLAS_OP_T : CUBLAS_OP_N);
  if (epilogue != Epilogue::kNone) {
    set_desc(d, CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue == Epilogue::kBias           ? CUBLASLT_EPILOGUE_BIAS
                                               : epilogue == Epilogue::kGeluAuxBias ? CUBLASLT_EPILOGUE_GELU_AUX_BIAS
                                                                                     : CUBLASLT_EPILOGUE_DGELU);
    if (epilogue != Epilogue::kDGelu) set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, static_cast<int32_t>(type));
    if (key.bias_batched) set_desc(d, CUBLASLT_MATMUL_DESC_BIAS_BATCH_STRIDE, static_cast<int64_t>(key.n));
    if (epilogue != Epilogue::kBias) {
      set_desc(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_LD, static_cast<int64_t>(key.n));
      if (key.batch > 1) set_desc(d, CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_BATCH_STRIDE, static_cast<int64_t>(key.m * key.n));
    }
  }
  int64_t m = key.m, n = key.n, k = key.k;
  plan.layout_a = key.tb == Transpose::kNo ? make_layout(type, n, k, n, key.batch, key.stride_b)
                                           : make_layout(type, k, n, k, key.batch, key.stride_b);
  plan.layout_b = key.ta == Transpose::kNo ? make_layout(type, k, m, k, key.batch, key.stride_a)
                                           : make_layout(type, m, k, m, key.batch, key.stride_a);
  plan.layout_out = make_layout(cuda_type(key.out_dtype), n, m, n, key.batch, m * n);
  cublasLtMatmulPreference_t p = nullptr;
  MT_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&p));
  Preference pref(p);
  uint64_t ws = kWorkspaceBytes;
  MT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws)));
  const std::pair<cublasLtMatmulPreferenceAttributes_t, uint32_t> aligns[] = {
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_b},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_a},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_out},
      {CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_out}};
  for (const auto& [attr, value] : aligns)
    MT_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(p, attr, &value, sizeof(value)));
  cublasLtMatmulHeuristicResult_t results[kCandidates] = {};
  int found = 0;
  cublasStatus_t st = cublasLtMatmulAlgoGetHeuristic(cublaslt_handle(key.device), d, plan.layout_a.get(),
                                                     plan.layout_b.get(), plan.layout_out.get(),
                                                     plan.layout_out.get(), p, kCandidates, results, &found);
  if (st != CUBLAS_STATUS_SUCCESS) return false;
  for (int i = 0; i < found; ++i)
    if (results[i].state == CUBLAS_STATUS_SUCCESS) plan.candidates.push_back(results[i].algo);
  if (plan.candidates.empty()) return false;
  plan.algo = plan.candidates[0];
  plan.epilogue = epilogue;
  return true;
}

// Operands of one cuBLASLt call of a plan, in our row-major terms: d = a @ b (+ c when beta is 1).
struct MatmulArgs {
  int device;
  bool f64;
  const void *a, *b, *c;
  void* d;
  bool accumulate;
  void* workspace;
  cudaStream_t stream;
};

cublasStatus_t run_plan(const Plan& plan, const cublasLtMatmulAlgo_t& algo, const MatmulArgs& m) {
  double alpha64 = 1.0, beta64 = m.accumulate ? 1.0 : 0.0;
  float alpha32 = 1.0f, beta32 = static_cast<float>(beta64);
  const void* alpha = m.f64 ? static_cast<const void*>(&alpha64) : &alpha32;
  const void* beta = m.f64 ? static_cast<const void*>(&beta64) : &beta32;
  return cublasLtMatmul(cublaslt_handle(m.device), plan.desc.get(), alpha, m.b, plan.layout_a.get(), m.a,
                        plan.layout_b.get(), beta, m.c, plan.layout_out.get(), m.d, plan.layout_out.get(), &algo,
                        m.workspace, kWorkspaceBytes, m.stream);
}

// Note [Timing the heuristic's candidates]: only with matmul_autotune() (mt/ops/matmul_tuning.h;
// off by default so that every process picks the same algorithm and resumed runs are bit-exact).
// cuBLASLt's first heuristic choice is not always its fastest
// (bf16 8192^3 without bias ran at 89% of cublasGemmEx on the H200, with the bias epilogue at 93%). The
// first call for a plan runs each candidate once untimed (loading its kernel), then kTimedRuns times
// between CUDA events on a scratch output of out's size, and keeps the fastest. This costs a few ms once
// per shape (up to 8 x 3 GEMMs: some 30 ms for bf16 8192^3) and nothing afterwards. Near-ties keep the heuristic's order
// (kMinGain), so a shape mostly gets the same algorithm from run to run; different algorithms may round
// differently, so bitwise equality across processes is not promised. Inside a CUDA graph capture the
// stream cannot be synchronised: the heuristic's choice is used and the timing waits for a later call.
void time_candidates(Plan& plan, const Tensor& out, MatmulArgs m) {
  if (plan.candidates.size() < 2) {
    plan.timed = true;
    return;
  }
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  MT_CUDA_CHECK(cudaStreamIsCapturing(m.stream, &capture));
  if (capture != cudaStreamCaptureStatusNone) return;
  Tensor scratch = Tensor::empty(out.shape(), out.dtype(), out.device());
  m.c = m.d = scratch.data_ptr();
  m.accumulate = false;
  CudaEvent start, stop;
  float best_ms = 0;
  bool found = false;
  for (const cublasLtMatmulAlgo_t& algo : plan.candidates) {
    cublasStatus_t st = run_plan(plan, algo, m);
    start.record(m.stream);
    for (int r = 0; r < kTimedRuns && st == CUBLAS_STATUS_SUCCESS; ++r) st = run_plan(plan, algo, m);
    stop.record(m.stream);
    stop.synchronize();
    if (st != CUBLAS_STATUS_SUCCESS) continue;  // a candidate that fails is skipped
    float ms = start.elapsed_ms(stop);
    if (!found || ms < best_ms * (1.0f - kMinGain)) {
      plan.algo = algo;
      best_ms = ms;
      found = true;
    }
  }
  plan.timed = true;
}

class PlanCache {
 public:
  std::mutex mu;  // guards the map and each plan's descriptor (the bias pointer is set per call)

  // The plan for `key`; null for a GELU epilogue cuBLASLt has no algorithm for (remembered).
  Plan* get(const PlanKey& key) {
    auto it = plans_.find(key);
    if (it != plans_.end()) return it->second.get();
    auto plan = std::make_unique<Plan>();
    bool gelu = key.epilogue == Epilogue::kGeluAuxBias || key.epilogue == Epilogue::kDGelu;
    if (gelu) {
      if (!build_plan(key, key.epilogue, *plan)) plan.reset();
      return plans_.emplace(key, std::move(plan)).first->second.get();
    }
    // The bias epilogue where the heuristic offers one; otherwise a plain GEMM and add_bias_rows.
    bool ok = key.epilogue == Epilogue::kBias && build_plan(key, Epilogue::kBias, *plan);
    if (!ok) {
      plan = std::make_unique<Plan>();
      MT_CHECK(build_plan(key, Epilogue::kNone, *plan), "matmul (cuda): cuBLASLt has no algorithm for ", dtype_name(key.dtype),
               " (", key.batch, " x ", key.m, " x ", key.k, ") @ (", key.k, " x ", key.n, ")",
               key.ta == Transpose::kYes ? ", a transposed" : "", key.tb == Transpose::kYes ? ", b transposed" : "");
    }
    return plans_.emplace(key, std::move(plan)).first->second.get();
  }

 private:
  std::map<PlanKey, std::unique_ptr<Plan>> plans_;
};

PlanCache& plan_cache() {
  static PlanCache* cache = new PlanCache();  // never destroyed: descriptors may outlive static teardown order
  return *cache;
}

// (B, r, c) sizes of a 2-d or 3-d operand.
struct Mat3 {
  int64_t batch, rows, cols;
};
Mat3 mat3(const Tensor& t, const char* name) {
  MT_CHECK(t.dim() == 2 || t.dim() == 3, "matmul (cuda): ", name, " must be 2-d or 3-d, got ", t.shape());
  MT_CHECK(t.is_contiguous(), "matmul (cuda): ", name, " must be contiguous, got strides ", t.strides());
  return t.dim() == 3 ? Mat3{t.size(0), t.size(1), t.size(2)} : Mat3{1, t.size(0), t.size(1)};
}

// out (rows, cols) += bias, one bias row per group_rows rows.
void add_bias(const Tensor& out, const Tensor& bias, int64_t rows, int64_t cols, int64_t group_rows, cudaStream_t s) {
  dispatch_device_floating(out.dtype(), "matmul bias", [&]<typename T>() {
    MT_CUDA_CHECK(gpu::add_bias_rows<T>(ptr<T>(out), ptr<T>(bias), rows, cols, group_rows, s));
  });
}

}  // namespace

void matmul(const Tensor& a, Transpose ta, const Tensor& b, Transpose tb, const Tensor& out, const Tensor& bias,
            Accumulate acc) {
  Mat3 sa = mat3(a, "a"), sb = mat3(b, "b"), so = mat3(out, "out");
  int64_t batch = so.batch, m = so.rows, n = so.cols;
  int64_t k = ta == Transpose::kYes ? sa.rows : sa.cols;
  MT_CHECK((ta == Transpose::kYes ? sa.cols : sa.rows) == m && (tb == Transpose::kYes ? sb.cols : sb.rows) == k &&
               (tb == Transpose::kYes ? sb.rows : sb.cols) == n,
           "matmul (cuda): shapes do not match: a ", a.shape(), ", b ", b.shape(), ", out ", out.shape());
  MT_CHECK((sa.batch == 1 || sa.batch == batch) && (sb.batch == 1 || sb.batch == batch),
           "matmul (cuda): batch sizes must be 1 or ", batch, ", got a ", a.shape(), ", b ", b.shape());
  const bool widening = out.dtype() != a.dtype();  // f32 out of half operands
  MT_CHECK(a.dtype() == b.dtype() && (!bias.defined() || bias.dtype() == out.dtype()) &&
               (!widening || (is_half(a.dtype()) && out.dtype() == DType::kF32 && !bias.defined())),
           "matmul (cuda): a, b, bias and out must share one dtype (or out f32 from half a and b, without bias), got ",
           a.dtype(), ", ", b.dtype(), ", ", out.dtype());
  MT_CHECK(!bias.defined() || ((bias.numel() == n || bias.numel() == batch * n) && bias.is_contiguous()),
           "matmul (cuda): bias must be contiguous (", n, ") or (", batch, ", ", n, "), got ", bias.shape());
  bool bias_batched = bias.defined() && bias.numel() != n;
  int64_t bias_group_rows = bias_batched ? m : batch * m;  // rows of out sharing one bias row
  cudaStream_t s = stream_for(out);
  int dev = out.device().index;
  if (batch == 0 || m == 0 || n == 0) return;
  if (k == 0) {  // an empty sum: out = bias (+ out)
    if (acc == Accumulate::kNo) MT_CUDA_CHECK(cudaMemsetAsync(out.data_ptr(), 0, out.nbytes(), s));
    if (bias.defined()) add_bias(out, bias, batch * m, n, bias_group_rows, s);
    return;
  }
  int64_t stride_a = sa.batch == 1 ? 0 : m * k, stride_b = sb.batch == 1 ? 0 : k * n;
  // A shared b with untransposed a (and no per-batch bias) is one GEMM over all batch * m rows.
  if (batch > 1 && sb.batch == 1 && ta == Transpose::kNo && sa.batch == batch && !bias_batched) {
    m *= batch;
    batch = 1;
    stride_a = 0;
  }
  Epilogue epilogue = bias.defined() && alignment(bias.data_ptr()) >= 16 ? Epilogue::kBias : Epilogue::kNone;
  PlanKey key{dev,      a.dtype(), out.dtype(), ta,        tb, m, n, k, batch, stride_a, stride_b, epilogue,
              bias_batched, alignment(a.data_ptr()), alignment(b.data_ptr()), alignment(out.data_ptr())};
  void* workspace = cuda_workspace(dev, kWorkspaceBytes);
  PlanCache& cache = plan_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  Plan& plan = *cache.get(key);
  if (plan.epilogue == Epilogue::kBias) {
    const void* bias_ptr = bias.data_ptr();
    set_desc(plan.desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr);
  }
  MatmulArgs args{.device = dev,
                  .f64 = out.dtype() == DType::kF64,
                  .a = a.data_ptr(),
                  .b = b.data_ptr(),
                  .c = out.data_ptr(),
                  .d = out.data_ptr(),
                  .accumulate = acc == Accumulate::kYes,
                  .workspace = workspace,
                  .stream = s};
  if (matmul_autotune() && !plan.timed) time_candidates(plan, out, args);
  MT_CUBLAS_CHECK(run_plan(plan, plan.algo, args));
  if (bias.defined() && plan.epilogue != Epilogue::kBias) add_bias(out, bias, batch * m, n, bias_group_rows, s);
}

namespace {

// One batched GEMM out (B, M, N) = a (B, M, K) @ op(b) of row-major operands with a GELU epilogue (`bias`
// (B, 1, N) for kGeluAuxBias, undefined for kDGelu; `aux` (B, M, N) the pre-activation); false when cuBLASLt
// has no algorithm for it or the operands do not meet its alignment (aux rows of a multiple of 8
// elements, 16-byte aligned pointers).
bool gelu_epilogue_gemm(Epilogue epilogue, const Tensor& a, const Tensor& b, Transpose tb, const Tensor& out,
                        const Tensor& bias, const Tensor& aux) {
  int64_t batch = out.size(0), m = out.size(1), n = out.size(2), k = a.size(2);
  if (out.dtype() == DType::kF64 || n % 8 != 0 || k == 0 || m == 0 || batch == 0) return false;
  for (const Tensor* t : {&a, &b, &out, &bias, &aux})
    if (t->defined() && alignment(t->data_ptr()) < 16) return false;
  int dev = out.device().index;
  const bool batched = batch > 1;
  PlanKey key{dev,         out.dtype(), out.dtype(), Transpose::kNo,          tb, m, n, k, batch,
              batched ? m * k : 0,       batched ? n * k : 0,      epilogue,
              batched && bias.defined(), alignment(a.data_ptr()),  alignment(b.data_ptr()), alignment(out.data_ptr())};
  void* workspace = cuda_workspace(dev, kWorkspaceBytes);
  PlanCache& cache = plan_cache();
  std::lock_guard<std::mutex> lock(cache.mu);
  Plan* plan = cache.get(key);
  if (!plan) return false;
  void* aux_ptr = aux.data_ptr();
  if (bias.defined()) {
    const void* bias_ptr = bias.data_ptr();
    set_desc(plan->desc.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_ptr);
  }
  set_desc(plan->desc.get(), CUBLASLT_MATMUL_DESC_EPILOGUE_AUX_POINTER, aux_ptr);
  MatmulArgs args{.device = dev,
                  .f64 = false,
                  .a = a.data_ptr(),
                  .b = b.data_ptr(),
                  .c = out.data_ptr(),
                  .d = out.data_ptr(),
                  .accumulate = false,
                  .workspace = workspace,
                  .stream = stream_for(out)};
  // Never timed (matmul_autotune): timing would run the epilogue into the live aux / bias buffers.
  MT_CUBLAS_CHECK(run_plan(*plan, plan->algo, args));
  return true;
}

void check_gelu_operands(const char* op, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* t : ts)
    MT_CHECK(t->dim() == 3 && t->is_contiguous() && t->dtype() == (*ts.begin())->dtype(), op,
             " (cuda): expected contiguous 3-d tensors of one dtype, got ", t->describe());
}

}  // namespace

bool matmul_bias_gelu(const Tensor& a, const Tensor& b, Transpose tb, const Tensor& bias, const Tensor& pre,
                      const Tensor& out) {
  check_gelu_operands("matmul_bias_gelu", {&a, &b, &bias, &pre, &out});
  return gelu_epilogue_gemm(Epilogue::kGeluAuxBias, a, b, tb, out, bias, pre);
}

bool matmul_dgelu_bgrad(const Tensor& a, const Tensor& b, Transpose tb, const Tensor& pre, const Tensor& out,
                        const Tensor& bias_grad) {
  check_gelu_operands("matmul_dgelu_bgrad", {&a, &b, &pre, &out});
  MT_CHECK(bias_grad.is_contiguous() && (bias_grad.dtype() == out.dtype() || bias_grad.dtype() == DType::kF32),
           "matmul_dgelu_bgrad (cuda): bias_grad must be contiguous, in ", dtype_name(out.dtype()), " or f32, got ",
           bias_grad.describe());
  // cuBLASLt's DGELU_BGRAD epilogue would sum the bias gradient too, but ran at 0.44 ms where the plain GEMM
  // takes 0.12 (H200, 16384 x 768 @ 768 x 3072, bf16): the sum stays a GEMM of ones (0.04 ms).
  // Batched, the DGELU epilogue took 0.54 ms for the MoE experts' 8 x (2048 x 768 @ 768 x 3072), where the
  // plain batched GEMM and the gelu' pass took 0.11 + 0.11 (H100, bench/NOTES.md 2026-12-06): declined.
  int64_t batch = out.size(0), m = out.size(1), n = out.size(2);
  if (batch > 1) return false;
  if (!gelu_epilogue_gemm(Epilogue::kDGelu, a, b, tb, out, Tensor(), pre)) return false;
  Tensor ones = Tensor::empty({1, 1, m}, out.dtype(), out.device());
  fill(ones, 1.0);
  matmul(ones, Transpose::kNo, out, Transpose::kNo, bias_grad.view({batch, 1, n}), Tensor(), Accumulate::kNo);
  return true;
}

}  // namespace mt::cuda
