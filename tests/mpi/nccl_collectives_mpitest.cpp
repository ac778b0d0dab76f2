// Multi-rank collectives on CUDA tensors (NCCL, src/dist/cuda/nccl_ops.cpp), one GPU per rank: the same
// values as the MPI path gives for CPU tensors, and bucketed gradient averaging of bf16 and f32 gradients.
// Skipped unless every rank has a GPU of its own (NCCL cannot put two ranks of a job on one GPU).
#include <gtest/gtest.h>

#include <optional>

#include "mt/core/device.h"
#include "mt/dist/communicator.h"
#include "mt/dist/gradient_buckets.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

// cuda:<local rank> when every rank of the job has a GPU of its own; nullopt otherwise (same answer on all ranks).
std::optional<Device> own_gpu(const Communicator& w) {
  bool mine = cuda_available() && w.local_rank() < cuda_device_count();
  bool all = w.all_reduce(mine ? 0.0 : 1.0, ReduceKind::kMax) == 0.0;
  if (!all) return std::nullopt;
  return Device::cuda(w.local_rank());
}

#define MT_SKIP_WITHOUT_OWN_GPU(w, dev)                                                                  \
  std::optional<Device> dev = own_gpu(w);                                                                \
  if (!dev) GTEST_SKIP() << "needs one GPU per rank (" << w.size() << " ranks, " << cuda_device_count() \
                         << " GPUs here): runs on multi-GPU machines";

}  // namespace

TEST(NcclCollectives, MatchTheMpiValuesOnCudaTensors) {
  Communicator w = Communicator::world();
  MT_SKIP_WITHOUT_OWN_GPU(w, dev);
  int n = w.size(), r = w.rank();

  Tensor s = full({1000}, r + 1.0, {DType::kF32, *dev});
  w.all_reduce(s, ReduceKind::kSum);
  EXPECT_EQ(s.device(), *dev);
  for (float v : s.to(Device::cpu()).to_vector<float>()) ASSERT_EQ(v, n * (n + 1) / 2.0f);
  Tensor a = full({7}, 2.0 * r, {DType::kBF16, *dev});
  w.all_reduce(a, ReduceKind::kAvg);
  EXPECT_EQ(a.to(Device::cpu()).to_vector<float>()[6], static_cast<float>(n - 1));
  Tensor m = full({3}, static_cast<double>(r), {DType::kF64, *dev});
  w.all_reduce(m, ReduceKind::kMax);
  EXPECT_EQ(m.to(Device::cpu()).to_vector<double>()[0], n - 1);

  Tensor b = full({4}, static_cast<double>(r), {DType::kI64, *dev});
  w.broadcast(b, n - 1);
  EXPECT_EQ(b.to(Device::cpu()).to_vector<int64_t>()[3], n - 1);

  Tensor in = full({2}, static_cast<double>(r), {DType::kF32, *dev});
  Tensor out = zeros({2 * n}, {DType::kF32, *dev});
  w.all_gather(in, out);
  auto g = out.to(Device::cpu()).to_vector<float>();
  for (int i = 0; i < n; ++i) EXPECT_EQ(g[2 * i + 1], i);

  Tensor big = arange(0, 2 * n, 1, {DType::kF32, *dev});  // identical on every rank
  Tensor part = zeros({2}, {DType::kF32, *dev});
  w.reduce_scatter(big, part, ReduceKind::kSum);
  EXPECT_EQ(part.to(Device::cpu()).to_vector<float>()[0], 2.0f * r * n);

  // chunk j of rank r holds 100*r + j; after all_to_all chunk i holds 100*i + r.
  Tensor send = add(full({n}, 100.0 * r, {DType::kF32, *dev}), arange(0, n, 1, {DType::kF32, *dev}));
  Tensor recv = zeros({n}, {DType::kF32, *dev});
  w.all_to_all(send, recv);
  auto v = recv.to(Device::cpu()).to_vector<float>();
  for (int i = 0; i < n; ++i) EXPECT_EQ(v[i], 100.0f * i + r);
}

// reduce_scatter_start on the communication stream: equal chunks (ncclReduceScatter) and unequal ones,
// some empty (one ncclReduce per owner), the same values as the MPI path (collectives_mpitest.cpp).
TEST(NcclCollectives, ReduceScatterStartEqualAndUnequalChunks) {
  Communicator w = Communicator::world();
  MT_SKIP_WITHOUT_OWN_GPU(w, dev);
  const int n = w.size(), r = w.rank();
  std::vector<int64_t> unequal;
  for (int q = 0; q < n; ++q) unequal.push_back(q % 2 == 0 ? q + 3 : 0);
  for (const std::vector<int64_t>& counts : {std::vector<int64_t>(n, 5), unequal}) {
    int64_t total = 0, offset = 0;
    for (int q = 0; q < n; ++q) {
      if (q == r) offset = total;
      total += counts[q];
    }
    Tensor in = add(arange(0, total, 1, {DType::kF32, *dev}), 1000.0 * r);
    Tensor out = zeros({counts[r]}, {DType::kF32, *dev});
    w.reduce_scatter_start(in, out, counts, ReduceKind::kSum).wait();
    std::vector<float> got = out.to(Device::cpu()).to_vector<float>();
    for (int64_t j = 0; j < counts[r]; ++j) EXPECT_EQ(got[j], 1000.0f * n * (n - 1) / 2 + n * (offset + j)) << j;
  }
}

TEST(NcclCollectives, GradientBucketsAverageBf16AndF32Gradients) {
  Communicator w = Communicator::world();
  MT_SKIP_WITHOUT_OWN_GPU(w, dev);
  int n = w.size(), r = w.rank();
  // grad[i] = (rank + 1) * (i % 8): small integers, exact in bf16; the average is (n + 1) / 2 * (i % 8).
  auto param = [&](int64_t numel, DType dtype) {
    Tensor p = zeros({numel}, {dtype, *dev});
    p.set_requires_grad(true);
    std::vector<float> g(static_cast<size_t>(numel));
    for (size_t i = 0; i < g.size(); ++i) g[i] = static_cast<float>((r + 1) * static_cast<int>(i % 8));
    p.set_grad(Tensor::from_vector(g, {numel}, dtype, *dev));
    return p;
  };
  std::vector<Tensor> params = {param(3000, DType::kBF16), param(50, DType::kF32), param(1 << 20, DType::kBF16)};
  // 4 KiB buckets: bf16 6000 B alone, 2 MiB alone; f32 200 B. Three collectives.
  EXPECT_EQ(all_reduce_gradients(params, w, 4096), 3);
  for (const Tensor& p : params) {
    EXPECT_EQ(p.grad().device(), *dev);
    auto got = p.grad().to(Device::cpu()).to_vector<double>();
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(got[i], (n + 1) / 2.0 * static_cast<double>(i % 8)) << dtype_name(p.dtype()) << " element " << i;
  }
}
