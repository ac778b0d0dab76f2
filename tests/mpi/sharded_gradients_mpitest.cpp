// ZeRO-2's gradient reduction (Note [Sharded gradients] in src/dist/gradient_reducer.cpp) under 2 and 4
// ranks: every backward's gradients reduce-scattered to their owners, accumulated over micro-batches, the
// owned ones averaged into their gradients at the last, the others dropped; the same values as averaging
// the whole gradients (small multiples of 1/4: exact in f32 whatever the order of the sums).
#include <gtest/gtest.h>

#include "mt/core/error.h"
#include "mt/dist/gradient_reducer.h"
#include "mt/graph/grad_mode.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

// Parameter k's grad[i] = (rank + 1) * (100 k + i + 1) * scale: each parameter's values its own.
Tensor grad_for(const Shape& shape, size_t k, int rank, double scale) {
  return mul(add(arange(0, shape.numel()), 100.0 * k + 1), (rank + 1) * scale).view(shape);
}

}  // namespace

TEST(ShardedGradients, OwnersKeepTheAverageOfEveryBackward) {
  Communicator w = Communicator::world();
  const int n = w.size(), r = w.rank();
  const std::vector<Shape> shapes = {{3, 4}, {5}, {2, 2, 2}, {40}, {7}, {6}};
  std::vector<Tensor> params;
  for (const Shape& s : shapes) {
    params.push_back(zeros(s));
    params.back().set_requires_grad(true);
  }
  // Owners ascending in model order as ZeroPartition makes them; on 4 ranks rank 3 owns nothing (an empty
  // chunk). 64-byte buckets, filled in reverse model order: {5, 4}, {3}, {2, 1}, {0}; the bucket {2, 1}
  // holds parameters of owners 1 and 0, so its buffer must be packed by owner.
  const std::vector<int> owners = n == 2 ? std::vector<int>{0, 0, 1, 1, 1, 1} : std::vector<int>{0, 0, 1, 2, 2, 2};
  GradientReducer reducer(params, w, DType::kF32, Overlap::kOff, 64, owners);
  EXPECT_EQ(reducer.buckets(), 4);
  NoGradGuard ng;
  for (int micro = 0; micro < 2; ++micro) {
    for (size_t k = 0; k < params.size(); ++k) params[k].set_grad(grad_for(shapes[k], k, r, 0.25 * (micro + 1)));
    reducer.arm();
    reducer.finish(micro == 0 ? Backward::kMore : Backward::kLast);
    if (micro == 0)
      for (const Tensor& p : params) EXPECT_FALSE(p.grad().defined()) << "a gradient kept between backwards";
  }
  for (size_t k = 0; k < params.size(); ++k) {
    if (owners[k] != r) {
      EXPECT_FALSE(params[k].grad().defined()) << "rank " << r << " kept parameter " << k << " it does not own";
      continue;
    }
    ASSERT_TRUE(params[k].grad().defined()) << "owned parameter " << k;
    // The average over ranks of the two backwards' sum: (n + 1) / 2 * (100 k + i + 1) * (0.25 + 0.5).
    Tensor want = grad_for(shapes[k], k, 0, 0.75 * (n + 1) / 2.0);
    EXPECT_EQ(params[k].grad().to_vector<float>(), want.to_vector<float>()) << "parameter " << k;
  }
}

TEST(ShardedGradients, ReplicatedGradientsReduceOnlyAfterTheLastBackward) {
  Communicator w = Communicator::world();
  Tensor p = zeros({4});
  p.set_requires_grad(true);
  GradientReducer reducer({p}, w, DType::kF32, Overlap::kOff);
  EXPECT_FALSE(reducer.sharded());
  EXPECT_THROW(reducer.finish(Backward::kMore), Error);
}
