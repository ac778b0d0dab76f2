// Multi-rank tests (run by ctest under mpirun -np 2 and -np 4): collectives on CPU tensors and
// the process-group layout of REFERENCE.md. Each rank runs gtest; a failure on any rank fails the job.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/core/error.h"
#include "mt/dist/communicator.h"
#include "mt/dist/process_groups.h"
#include "mt/ops/ops.h"

using namespace mt;

TEST(Collectives, AllReduceSumsAndAverages) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  Tensor t = full({5}, r + 1.0);
  w.all_reduce(t, ReduceKind::kSum);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, n * (n + 1) / 2.0f);
  Tensor a = full({3}, static_cast<double>(r), {DType::kF64});
  w.all_reduce(a, ReduceKind::kAvg);
  EXPECT_DOUBLE_EQ(a.to_vector<double>()[0], (n - 1) / 2.0);
  EXPECT_EQ(w.all_reduce(static_cast<double>(r), ReduceKind::kMax), n - 1);
}

// bf16 has no MPI type: its own sum op (dist.grad_reduce_dtype: bf16 on CPU ranks). Small integers sum
// exactly; 1 plus the other ranks' 2^-8 / n each (under half a bf16 ulp of 1 in all) rounds back to 1
// in any order, as every partial sum is rounded to bf16 (as on NCCL).
TEST(Collectives, AllReduceSumsBf16) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  Tensor t = full({70}, r + 1.0, {DType::kBF16});
  w.all_reduce(t, ReduceKind::kSum);
  for (float v : t.to_vector<float>()) EXPECT_EQ(v, n * (n + 1) / 2.0f);
  Tensor small = full({3}, r == 0 ? 1.0 : std::ldexp(1.0, -8) / n, {DType::kBF16});
  w.all_reduce(small, ReduceKind::kSum);
  EXPECT_EQ(small.to_vector<float>()[0], 1.0f);
  EXPECT_THROW(w.all_reduce(t, ReduceKind::kMax), Error);
}

TEST(Collectives, BroadcastGatherScatterAllToAll) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  Tensor b = full({4}, static_cast<double>(r), {DType::kI64});
  w.broadcast(b, n - 1);
  EXPECT_EQ(b.to_vector<int64_t>()[3], n - 1);

  Tensor in = full({2}, static_cast<double>(r));
  Tensor out = zeros({2 * n});
  w.all_gather(in, out);
  auto g = out.to_vector<float>();
  for (int i = 0; i < n; ++i) EXPECT_EQ(g[2 * i + 1], i);

  Tensor big = arange(0, 2 * n);  // identical on every rank
  Tensor part = zeros({2});
  w.reduce_scatter(big, part, ReduceKind::kSum);
  EXPECT_EQ(part.to_vector<float>()[0], 2.0f * r * n);

  // chunk j of rank r holds 100*r + j; after all_to_all chunk i holds 100*i + r.
  Tensor send = add(full({n}, 100.0 * r), arange(0, n));
  Tensor recv = zeros({n});
  w.all_to_all(send, recv);
  auto v = recv.to_vector<float>();
  for (int i = 0; i < n; ++i) EXPECT_EQ(v[i], 100.0f * i + r);
}

// reduce_scatter_start: chunks of unequal sizes, some empty (ZeRO-2's buckets hold whole parameters per
// owner). in[i] = 1000 * rank + i on every rank, so rank r's chunk, starting at element o, sums to
// 1000 * n(n-1)/2 + n * (o + j) exactly; f32, bf16 (small integers, exact) and the average.
TEST(Collectives, ReduceScatterStartUnequalChunks) {
  Communicator w = Communicator::world();
  const int n = w.size(), r = w.rank();
  std::vector<int64_t> counts;
  for (int q = 0; q < n; ++q) counts.push_back(q % 2 == 0 ? q + 3 : 0);  // odd ranks receive nothing
  int64_t total = 0, offset = 0;
  for (int q = 0; q < n; ++q) {
    if (q == r) offset = total;
    total += counts[q];
  }
  Tensor in = add(arange(0, total), 1000.0 * r);
  Tensor out = zeros({counts[r]});
  CommRequest req = w.reduce_scatter_start(in, out, counts, ReduceKind::kSum);
  req.wait();
  std::vector<float> got = out.to_vector<float>();
  ASSERT_EQ(static_cast<int64_t>(got.size()), counts[r]);
  for (int64_t j = 0; j < counts[r]; ++j) EXPECT_EQ(got[j], 1000.0f * n * (n - 1) / 2 + n * (offset + j)) << j;

  Tensor small = cast(add(arange(0, total), static_cast<double>(r)), DType::kBF16);  // sums <= 4 * 10: exact in bf16
  Tensor small_out = zeros({counts[r]}, {DType::kBF16});
  w.reduce_scatter_start(small, small_out, counts, ReduceKind::kSum).wait();
  std::vector<float> s = small_out.to_vector<float>();
  for (int64_t j = 0; j < counts[r]; ++j) EXPECT_EQ(s[j], n * (offset + j) + n * (n - 1) / 2.0f) << j;

  Tensor avg = zeros({counts[r]});
  w.reduce_scatter_start(in, avg, counts, ReduceKind::kAvg).wait();
  std::vector<float> a = avg.to_vector<float>();
  for (int64_t j = 0; j < counts[r]; ++j) EXPECT_EQ(a[j], 1000.0f * (n - 1) / 2 + (offset + j)) << j;

  EXPECT_THROW(w.reduce_scatter_start(in, out, {total}, ReduceKind::kSum), Error);             // one count per rank
  EXPECT_THROW(w.reduce_scatter_start(in, zeros({counts[r] + 1}), counts, ReduceKind::kSum), Error);  // out's size
}

TEST(ProcessGroups, LayoutFollowsDeepSpeed) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  if (n % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  ProcessGroups groups(w, 2, {2});
  const ExpertGroups& g = *groups.groups_for(2);
  EXPECT_EQ(groups.world().size(), n);
  EXPECT_EQ(g.ep.size(), 2);
  EXPECT_EQ(g.ep.rank(), r % 2);
  EXPECT_EQ(g.expert_dp.size(), n / 2);
  // Sum of world ranks in my expert-dp group: ranks with the same r % 2.
  double s = g.expert_dp.all_reduce(static_cast<double>(r), ReduceKind::kSum);
  double expect = 0;
  for (int i = r % 2; i < n; i += 2) expect += i;
  EXPECT_EQ(s, expect);
}

int main(int argc, char** argv) {
  MpiRuntime mpi(&argc, &argv);
  ::testing::InitGoogleTest(&argc, argv);
  Communicator w = Communicator::world();
  if (w.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  int rc = RUN_ALL_TESTS();
  int any = static_cast<int>(w.all_reduce(static_cast<double>(rc != 0), ReduceKind::kMax));
  return any;
}
