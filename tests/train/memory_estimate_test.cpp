// memory_per_rank: weights, gradients and AdamW state per rank, with experts split by dist.ep and the
// replicated parameters' state by ZeRO-1 (and gradients by ZeRO-2), against hand-computed counts; errors
// name dist.ep.
#include <gtest/gtest.h>

#include "mt/core/error.h"
#include "mt/train/memory_estimate.h"

using namespace mt;

namespace {

// 2 blocks of d 8; block 1 has 4 experts of 8 * 8 * 8 + 5 * 8 = 552 parameters each.
GPTConfig tiny_moe() {
  GPTConfig c;
  c.layers = 2;
  c.d_model = 8;
  c.heads = 2;
  c.seq_len = 4;
  c.vocab_size = 64;
  c.experts_per_block = {0, 4};
  return c;
}

}  // namespace

TEST(MemoryEstimate, ExpertsSplitByEpAndStateByZero) {
  GPTConfig c = tiny_moe();
  ParamCounts pc = count_parameters(c);
  ASSERT_EQ(pc.expert_params, (std::vector<int64_t>{0, 4 * 552}));
  const double replicated = static_cast<double>(pc.total) - 4 * 552;
  // One rank, bf16: 2 + 4 bytes of weight and f32 gradient, 4 + 8 of f32 master and moments per parameter.
  MemoryPerRank one = memory_per_rank(c, true, 1, 1, 0);
  EXPECT_DOUBLE_EQ(one.weights_and_grads, pc.total * 6.0);
  EXPECT_DOUBLE_EQ(one.optimizer_state, pc.total * 12.0);
  // 4 ranks, dist.ep 2: each rank holds 2 of the 4 experts; ZeRO-1 splits the rest's state 4 ways.
  MemoryPerRank split = memory_per_rank(c, true, 4, 2, 1);
  EXPECT_DOUBLE_EQ(split.weights_and_grads, (replicated + 2 * 552) * 6.0);
  EXPECT_DOUBLE_EQ(split.optimizer_state, (replicated / 4 + 2 * 552) * 12.0);
  // ZeRO-2 splits the replicated gradients 4 ways as well; the experts' stay whole.
  MemoryPerRank zero2 = memory_per_rank(c, true, 4, 2, 2);
  EXPECT_DOUBLE_EQ(zero2.weights_and_grads, (replicated + 2 * 552) * 2.0 + (replicated / 4 + 2 * 552) * 4.0);
  EXPECT_DOUBLE_EQ(zero2.optimizer_state, split.optimizer_state);
  // dist.ep larger than the layer's experts: min(E, ep) = 4 ranks, one expert each; f32 has no master.
  MemoryPerRank wide = memory_per_rank(c, false, 8, 8, 0);
  EXPECT_DOUBLE_EQ(wide.weights_and_grads, (replicated + 552) * 8.0);
  EXPECT_DOUBLE_EQ(wide.optimizer_state, (replicated + 552) * 8.0);
}

TEST(MemoryEstimate, ErrorsNameDistEp) {
  GPTConfig c = tiny_moe();
  try {
    memory_per_rank(c, true, 6, 4, 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dist.ep = 4 does not divide the job's 6 ranks"), std::string::npos) << e.what();
  }
  c.experts_per_block = {0, 6};
  try {
    memory_per_rank(c, true, 4, 4, 0);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block 1 has 6 experts"), std::string::npos) << e.what();
  }
}
