// A standalone measurement (not part of the build): the fused cross-entropy with gradient (loss and
// softmax - onehot written over the logits) for GPT-2's (16384, 50304) bf16, as moetrain runs it (a block per
// row keeping its row in shared memory: 68% of copy bandwidth on an H200, bench/NOTES.md 2026-12-06) against
// blocks that read their row twice, the second time from L2, at several block sizes and blocks per SM.
// On a GPU machine: nvcc -O3 -std=c++20 -arch=sm_90 -Ikernels -Iinclude -o /tmp/cev bench/cross_entropy_variants.cu
// && /tmp/cev
#include <cstdio>
#include <vector>

#include "../kernels/cross_entropy.cu"

using namespace mt::gpu;
using T = __nv_bfloat16;
using A = float;

#define CK(x)                                                                               \
  do {                                                                                      \
    cudaError_t e_ = (x);                                                                   \
    if (e_ != cudaSuccess) {                                                                \
      printf("CUDA error %s at %s:%d: %s\n", #x, __FILE__, __LINE__, cudaGetErrorString(e_)); \
      return 1;                                                                             \
    }                                                                                       \
  } while (0)

// One block per row, the row read twice from global memory: pass 1 the running logsumexp (as the forward
// kernel), pass 2 softmax - onehot over the same packs, which are then in L2 if few enough rows are in
// flight. Rows start 16-byte aligned and hold whole packs (checked on the host).
template <int kThreads>
__global__ void __launch_bounds__(kThreads) reread_kernel(T* __restrict__ logits, const int64_t* __restrict__ targets,
                                                          float* __restrict__ losses, float* __restrict__ lse_out,
                                                          int64_t vocab) {
  constexpr int V = kPack<T>;
  __shared__ A warp_m[32], warp_s[32], row_lse;
  const int64_t row = blockIdx.x, packs = vocab / V;
  T* x = logits + row * vocab;
  const int64_t t = targets[row];
  RunningLse<A> st;
  add_row_packs(st, x, packs);  // pass 1, as the forward kernel
  st.warp_merge();
  const int warp = threadIdx.x / 32;
  if (threadIdx.x % 32 == 0) {
    warp_m[warp] = st.m;
    warp_s[warp] = st.s;
  }
  __syncthreads();
  if (threadIdx.x == 0)
    row_lse = write_row_loss(st, warp_m, warp_s, x, t, int64_t{-100}, vocab, losses + row, lse_out + row);
  __syncthreads();
  const A lse = row_lse;
  for (int64_t q = threadIdx.x; q < packs; q += kThreads) {
    const Pack<T, V> v = load_pack<T, V>(x + q * V);
    Pack<T, V> r;
#pragma unroll
    for (int j = 0; j < V; ++j) r.v[j] = from_acc<T>(exp_acc(to_acc(v.v[j]) - lse) - (q * V + j == t ? A(1) : A(0)));
    store_pack<T, V>(x + q * V, r);
  }
}

__global__ void fill_logits(T* p, size_t n) {
  for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n; i += (size_t)gridDim.x * blockDim.x) {
    unsigned h = (unsigned)i * 2654435761u;
    h ^= h >> 13;
    h *= 0x5bd1e995;
    h ^= h >> 15;
    p[i] = __float2bfloat16(((h & 0xffff) / 65536.0f - 0.5f) * 10.0f);
  }
}

int main() {
  const int64_t rows = 16384, vocab = 50304;
  const size_t n = rows * vocab, bytes = n * sizeof(T);
  if (vocab % kPack<T> != 0) return 1;
  T *orig, *work, *ref;
  float *loss, *lse, *loss_ref, *lse_ref;
  int64_t* targets;
  CK(cudaMalloc(&orig, bytes));
  CK(cudaMalloc(&work, bytes));
  CK(cudaMalloc(&ref, bytes));
  CK(cudaMalloc(&loss, rows * 4));
  CK(cudaMalloc(&lse, rows * 4));
  CK(cudaMalloc(&loss_ref, rows * 4));
  CK(cudaMalloc(&lse_ref, rows * 4));
  CK(cudaMalloc(&targets, rows * 8));
  std::vector<int64_t> ht(rows);
  for (int64_t r = 0; r < rows; ++r) ht[r] = (r * 7919 + 13) % vocab;
  CK(cudaMemcpy(targets, ht.data(), rows * 8, cudaMemcpyHostToDevice));
  fill_logits<<<1024, 256>>>(orig, n);
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  const int reps = 10;
  // Each timed run starts from the original logits (restored by a copy outside the timed span).
  auto time_ms = [&](auto&& launch) {
    float total = 0;
    for (int r = 0; r < reps + 1; ++r) {
      cudaMemcpy(work, orig, bytes, cudaMemcpyDeviceToDevice);
      cudaEventRecord(a);
      launch();
      cudaEventRecord(b);
      cudaEventSynchronize(b);
      float ms;
      cudaEventElapsedTime(&ms, a, b);
      if (r > 0) total += ms;  // the first run loads the kernel
    }
    return total / reps;
  };
  const float copy = time_ms([&] { cudaMemcpy(ref, orig, bytes, cudaMemcpyDeviceToDevice); });
  printf("copy (read + write) %.3f ms = %.2f TB/s\n", copy, 2.0 * bytes / copy / 1e9);
  auto report = [&](const char* name, float ms) {
    printf("%-44s %.3f ms  %.0f%% of copy\n", name, ms, 100.0 * copy / ms);
  };
  report("moetrain: shared-memory row, block per row", time_ms([&] {
           cross_entropy_with_grad<T, float>(work, targets, -100, loss_ref, lse_ref, rows, vocab, 0);
         }));
  CK(cudaGetLastError());
  CK(cudaMemcpy(ref, work, bytes, cudaMemcpyDeviceToDevice));  // the reference result
  report("forward + backward kernels", time_ms([&] {
           cross_entropy_forward<T, float>(work, targets, -100, loss, lse, rows, vocab, 0);
           cross_entropy_backward<T, float>(work, targets, -100, lse, nullptr, work, rows, vocab, 0);
         }));
  int sms = 0;
  cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0);
  std::vector<T> want(vocab * 64), got(vocab * 64);
  auto check = [&](const char* name) {
    // The first 64 rows' gradients and every row's lse against the reference kernel.
    cudaMemcpy(want.data(), ref, want.size() * sizeof(T), cudaMemcpyDeviceToHost);
    cudaMemcpy(got.data(), work, got.size() * sizeof(T), cudaMemcpyDeviceToHost);
    double worst = 0;
    for (size_t i = 0; i < want.size(); ++i)
      worst = fmax(worst, fabs(__bfloat162float(want[i]) - __bfloat162float(got[i])));
    std::vector<float> l1(rows), l2(rows);
    cudaMemcpy(l1.data(), lse_ref, rows * 4, cudaMemcpyDeviceToHost);
    cudaMemcpy(l2.data(), lse, rows * 4, cudaMemcpyDeviceToHost);
    double worst_lse = 0;
    for (int64_t r = 0; r < rows; ++r) worst_lse = fmax(worst_lse, fabs(l1[r] - l2[r]));
    printf("    %s: max |grad diff| %.3g, max |lse diff| %.3g\n", name, worst, worst_lse);
  };
  // Blocks per SM capped by a dynamic shared-memory reservation (the kernel uses none of it).
  auto run_reread = [&](auto kernel, int threads, int per_sm) {
    int max_smem = 0;
    cudaDeviceGetAttribute(&max_smem, cudaDevAttrMaxSharedMemoryPerMultiprocessor, 0);
    const int smem = max_smem / per_sm - 2048;
    cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, smem);
    int resident = 0;
    cudaOccupancyMaxActiveBlocksPerMultiprocessor(&resident, kernel, threads, smem);
    char name[96];
    snprintf(name, sizeof name, "re-read: %d threads, %d blocks/SM (%.0f MB in flight)", threads, resident,
             resident * sms * vocab * 2.0 / 1e6);
    report(name, time_ms([&] { kernel<<<rows, threads, smem>>>(work, targets, loss, lse, vocab); }));
    check(name);
  };
  for (int per_sm : {1, 2, 3, 4, 6, 8}) run_reread(reread_kernel<256>, 256, per_sm);
  for (int per_sm : {1, 2, 3, 4}) run_reread(reread_kernel<512>, 512, per_sm);
  for (int per_sm : {1, 2}) run_reread(reread_kernel<1024>, 1024, per_sm);
  CK(cudaGetLastError());
  return 0;
}
