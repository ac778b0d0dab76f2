// A standalone cuBLASLt measurement (not part of the build): is the BGRADB epilogue, summing the bias
// gradient inside the weight-gradient GEMM dW (O x I) = g^T (O x R) @ x (R x I), cheaper than the plain
// GEMM and a GEMM of ones as moetrain does now? bf16 operands, f32 dW and db, GPT-2 124M's four shapes.
// On a GPU machine: nvcc -O2 -arch=sm_90 -o /tmp/bgrad bench/cublaslt_bgrad.cu -lcublasLt && /tmp/bgrad
#include <cublasLt.h>
#include <cuda_bf16.h>

#include <cmath>
#include <cstdio>
#include <vector>
#define CK(x)                                                    \
  do {                                                           \
    auto e = (x);                                                \
    if ((int)e != 0) {                                           \
      printf("error %d at %s:%d\n", (int)e, __FILE__, __LINE__); \
      return 1;                                                  \
    }                                                            \
  } while (0)
__global__ void fill(__nv_bfloat16 *p, size_t n, float scale, unsigned seed) {
  size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
  if (i < n) {
    unsigned h = (unsigned)i * 2654435761u ^ seed;
    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;
    p[i] = __float2bfloat16(((h & 0xffff) / 65536.0f - 0.5f) * scale);
  }
}
int main() {
  cublasLtHandle_t lt;
  CK(cublasLtCreate(&lt));
  size_t ws_bytes = 32 << 20;
  void *ws;
  cudaMalloc(&ws, ws_bytes);
  const long R = 16384;
  struct S {
    const char *name;
    long O, I;
  } shapes[] = {{"qkv", 2304, 768}, {"proj", 768, 768}, {"fc1", 3072, 768}, {"fc2", 768, 3072}};
  for (auto s : shapes) {
    __nv_bfloat16 *g, *x, *ones;
    float *dw, *db, *db_ref;
    cudaMalloc(&g, R * s.O * 2);
    cudaMalloc(&x, R * s.I * 2);
    cudaMalloc(&ones, R * 2);
    cudaMalloc(&dw, s.O * s.I * 4);
    cudaMalloc(&db, s.O * 4);
    cudaMalloc(&db_ref, s.O * 4);
    fill<<<(R * s.O + 255) / 256, 256>>>(g, R * s.O, 0.02f, 1);
    fill<<<(R * s.I + 255) / 256, 256>>>(x, R * s.I, 2.f, 2);
    std::vector<__nv_bfloat16> h1(R, __float2bfloat16(1.f));
    cudaMemcpy(ones, h1.data(), R * 2, cudaMemcpyHostToDevice);
    // column-major: D^T (I x O) = A (x^T: I x R; row-major x (R x I) is
    // col-major (I x R), op N) @ B (g: R x O; row-major g (R x O) is col-major
    // (O x R), op T)
    auto run = [&](bool bgrad, float *out_db, double *ms_out) -> int {
      cublasLtMatmulDesc_t d;
      CK(cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      cublasOperation_t ta = CUBLAS_OP_N, tb = CUBLAS_OP_T;
      CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
      CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
      if (bgrad) {
        cublasLtEpilogue_t ep = CUBLASLT_EPILOGUE_BGRADB;
        CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
        int32_t bt = CUDA_R_32F;
        CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
        CK(cublasLtMatmulDescSetAttribute(d, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &out_db, sizeof out_db));
      }
      cublasLtMatrixLayout_t la, lb, lc;
      CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, s.I, R, s.I));
      CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, s.O, R, s.O));
      CK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, s.I, s.O, s.I));
      cublasLtMatmulPreference_t p;
      CK(cublasLtMatmulPreferenceCreate(&p));
      CK(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
      cublasLtMatmulHeuristicResult_t res[8];
      int found = 0;
      auto st = cublasLtMatmulAlgoGetHeuristic(lt, d, la, lb, lc, lc, p, 8, res, &found);
      if (st != 0 || found == 0) {
        printf("  %s: no algorithm (status %d, found %d)\n", bgrad ? "BGRADB" : "plain", (int)st, found);
        *ms_out = -1;
        return 0;
      }
      float alpha = 1, beta = 0;
      cudaEvent_t a, b;
      cudaEventCreate(&a);
      cudaEventCreate(&b);
      double best = 1e9;
      for (int c = 0; c < found; ++c) {
        if (cublasLtMatmul(lt, d, &alpha, x, la, g, lb, &beta, dw, lc, dw, lc, &res[c].algo, ws, ws_bytes, 0) != 0)
          continue;
        cudaEventRecord(a);
        for (int r = 0; r < 20; ++r)
          cublasLtMatmul(lt, d, &alpha, x, la, g, lb, &beta, dw, lc, dw, lc, &res[c].algo, ws, ws_bytes, 0);
        cudaEventRecord(b);
        cudaEventSynchronize(b);
        float ms;
        cudaEventElapsedTime(&ms, a, b);
        if (c == 0) printf("  %-6s heuristic first %.4f ms", bgrad ? "BGRADB" : "plain", ms / 20);
        if (ms / 20 < best) best = ms / 20;
      }
      printf("  best of %d: %.4f ms\n", found, best);
      *ms_out = best;
      return 0;
    };
    // ones-GEMM bias gradient: row-major db (1 x O) = ones (1 x R) @ g (R x O);
    // col-major db^T (O x 1) = g^T... (O x R, op N) @ ones (R x 1)
    auto ones_gemm = [&](double *ms_out) -> int {
      cublasLtMatmulDesc_t d;
      CK(cublasLtMatmulDescCreate(&d, CUBLAS_COMPUTE_32F, CUDA_R_32F));
      cublasLtMatrixLayout_t la, lb, lc;
      CK(cublasLtMatrixLayoutCreate(&la, CUDA_R_16BF, s.O, R, s.O));
      CK(cublasLtMatrixLayoutCreate(&lb, CUDA_R_16BF, R, 1, R));
      CK(cublasLtMatrixLayoutCreate(&lc, CUDA_R_32F, s.O, 1, s.O));
      cublasLtMatmulPreference_t p;
      CK(cublasLtMatmulPreferenceCreate(&p));
      CK(cublasLtMatmulPreferenceSetAttribute(p, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws_bytes, sizeof ws_bytes));
      cublasLtMatmulHeuristicResult_t res[1];
      int found = 0;
      CK(cublasLtMatmulAlgoGetHeuristic(lt, d, la, lb, lc, lc, p, 1, res, &found));
      float alpha = 1, beta = 0;
      CK(cublasLtMatmul(lt, d, &alpha, g, la, ones, lb, &beta, db_ref, lc, db_ref, lc, &res[0].algo, ws, ws_bytes, 0));
      cudaEvent_t a, b;
      cudaEventCreate(&a);
      cudaEventCreate(&b);
      cudaEventRecord(a);
      for (int r = 0; r < 20; ++r)
        cublasLtMatmul(lt, d, &alpha, g, la, ones, lb, &beta, db_ref, lc, db_ref, lc, &res[0].algo, ws, ws_bytes, 0);
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float ms;
      cudaEventElapsedTime(&ms, a, b);
      *ms_out = ms / 20;
      return 0;
    };
    printf("%s: dW (%ld x %ld) over %ld rows\n", s.name, s.O, s.I, R);
    double plain, fused, ones_ms;
    if (run(false, nullptr, &plain)) return 1;
    if (run(true, db, &fused)) return 1;
    if (ones_gemm(&ones_ms)) return 1;
    std::vector<float> a(s.O), b(s.O);
    cudaMemcpy(a.data(), db, s.O * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(b.data(), db_ref, s.O * 4, cudaMemcpyDeviceToHost);
    double err = 0, mag = 0;
    for (long i = 0; i < s.O; ++i) {
      err = fmax(err, fabs(a[i] - b[i]));
      mag = fmax(mag, fabs(b[i]));
    }
    printf(
        "  ones-GEMM %.4f ms; plain + ones %.4f vs BGRADB %.4f ms; max |db "
        "diff| %.3g of max %.3g\n",
        ones_ms, plain + ones_ms, fused, err, mag);
    cudaFree(g);
    cudaFree(x);
    cudaFree(ones);
    cudaFree(dw);
    cudaFree(db);
    cudaFree(db_ref);
  }
  return 0;
}
