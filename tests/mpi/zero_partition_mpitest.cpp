// ZeRO-1 partitioning under 2 and 4 ranks: ownership in contiguous, balanced runs; the owners'
// broadcast; and an AdamW over each rank's share, followed by the broadcast, equal to one AdamW over
// every parameter, with the whole optimizer state (moments and bf16 masters) assembled from the owners.
#include <gtest/gtest.h>

#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"
#include "mt/optim/adamw.h"
#include "mt/train/zero_partition.h"

using namespace mt;

namespace {

// Five parameters of uneven sizes, one bf16 (it gets an f32 master); values and gradients from `seed`.
std::vector<NamedParameter> make_params(double seed) {
  const std::vector<std::pair<Shape, DType>> specs = {
      {{10, 10}, DType::kF32}, {{10}, DType::kF32}, {{5, 10}, DType::kBF16}, {{40}, DType::kF32}, {{1}, DType::kF32}};
  std::vector<NamedParameter> out;
  int i = 0;
  for (const auto& [shape, dtype] : specs) {
    Tensor ramp = arange(0, shape.numel(), 1, {DType::kF64});
    Tensor p = mul(tanh(add(mul(ramp, 0.37), seed + i - 3.0)), 0.5).to(dtype).view(shape);
    p.set_requires_grad(true);
    p.set_grad(mul(tanh(add(mul(ramp, 0.23), -2.0 - i)), 0.1).to(dtype).view(shape));
    out.push_back({"p" + std::to_string(i++), p, ParamKind::kWeight});
  }
  return out;
}

}  // namespace

TEST(ZeroPartition, OwnersAreContiguousBalancedAndCoverEveryParameter) {
  Communicator w = Communicator::world();
  ZeroPartition z(make_params(0), w);
  int64_t mine = 0;
  for (const NamedParameter& p : z.owned()) mine += p.tensor.numel();
  for (size_t i = 1; i < z.params().size(); ++i) EXPECT_LE(z.owner(i - 1), z.owner(i));
  EXPECT_EQ(z.owner(0), 0);
  EXPECT_EQ(w.all_reduce(static_cast<double>(mine), ReduceKind::kSum), 201.0);  // every element owned once
  EXPECT_LE(mine, 201 / w.size() + 100);  // at most a share plus the largest parameter
}

TEST(ZeroPartition, ShardedAdamWEqualsOneAdamWOverEveryParameter) {
  Communicator w = Communicator::world();
  // Every rank starts from the same values and gradients (as after the gradient all-reduce).
  std::vector<NamedParameter> full_params = make_params(1), part_params = make_params(1);
  AdamWConfig c;
  c.lr = 0.01;
  c.weight_decay = 0.1;
  AdamW full({{full_params, WeightDecay::kApply}}, c);
  ZeroPartition z(part_params, w);
  AdamW mine({{z.owned(), WeightDecay::kApply}}, c);
  for (int step = 0; step < 2; ++step) {
    full.step();
    mine.step();
    z.broadcast_parameters();
  }
  for (size_t i = 0; i < full_params.size(); ++i)
    EXPECT_EQ(part_params[i].tensor.to_vector<double>(), full_params[i].tensor.to_vector<double>())
        << full_params[i].name;
  StateDict want = full.state_dict(), got = z.gather_optimizer_state(mine, /*keep=*/true);
  ASSERT_EQ(got.size(), want.size());
  EXPECT_TRUE(got.count("state.p2.master"));
  for (const auto& [key, t] : want) {
    ASSERT_TRUE(got.count(key)) << key;
    EXPECT_EQ(got.at(key).to_vector<double>(), t.to_vector<double>()) << key;
  }
  EXPECT_TRUE(z.gather_optimizer_state(mine, /*keep=*/false).empty());
}
