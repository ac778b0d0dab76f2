// Dispatcher tests: the expert-major buffer and the weighted combine for a hand-written routing
// table (kept, dropped and empty slots), and their gradients; the packed buffer of dropless routing.
#include <gtest/gtest.h>

#include "mt/autograd/gradcheck.h"
#include "mt/nn/moe_dispatch.h"
#include "mt/nn/moe_routing.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

// Three tokens, two choices, two experts of three slots. Token 1's second choice and token 2's
// second choice are dropped; slot 2 of both experts stays empty.
RoutingTable hand_table(DType dtype) {
  RoutingTable t;
  t.expert = Tensor::from_vector<int64_t>({0, 1, 1, 0, 0, 1}, {3, 2});
  t.slot = Tensor::from_vector<int64_t>({0, 0, 1, -1, 1, -1}, {3, 2});
  t.weight = Tensor::from_vector<double>({0.75, 0.25, 1.0, 0.0, 1.0, 0.0}, {3, 2}).to(dtype);
  t.experts = 2;
  t.capacity = 3;
  t.buffer_choice = moe_buffer_map(t.expert, t.slot, t.experts, t.capacity);
  return t;
}

}  // namespace

TEST(Dispatch, BufferMapNamesTheChoiceInEachRow) {
  RoutingTable t = hand_table(DType::kF32);
  // Choices are token * 2 + j: expert 0 holds t0's first and t2's first; expert 1 t0's second and t1's first.
  EXPECT_EQ(t.buffer_choice.to_vector<int64_t>(), (std::vector<int64_t>{0, 4, -1, 1, 2, -1}));
}

TEST(Dispatch, ATableWithoutItsBufferMapIsRefused) {
  RoutingTable t = hand_table(DType::kF32);
  t.buffer_choice = Tensor();
  EXPECT_THROW(dispatch_tokens(zeros({3, 2}), t), Error);
}

TEST(Dispatch, BufferHoldsKeptTokensAndZerosElsewhere) {
  RoutingTable t = hand_table(DType::kF32);
  Tensor x = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor buffer = dispatch_tokens(x, t);
  EXPECT_EQ(buffer.shape(), (Shape{2, 3, 2}));
  // expert 0: t0, t2, empty; expert 1: t0 (second choice), t1, empty.
  EXPECT_EQ(buffer.to_vector<float>(), (std::vector<float>{1, 2, 5, 6, 0, 0, 1, 2, 3, 4, 0, 0}));
}

TEST(Dispatch, CombineWeighsExpertOutputsAndSkipsDroppedChoices) {
  RoutingTable t = hand_table(DType::kF32);
  Tensor y = Tensor::from_vector<float>({10, 11, 20, 21, 30, 31, 40, 41, 50, 51, 60, 61}, {2, 3, 2});
  Tensor out = combine_tokens(y, t);
  // t0: 0.75 * y[0,0] + 0.25 * y[1,0]; t1: 1 * y[1,1]; t2: 1 * y[0,1].
  EXPECT_EQ(out.to_vector<float>(), (std::vector<float>{17.5f, 18.5f, 50, 51, 20, 21}));
}

TEST(Dispatch, CombineCastsTheWeightsToTheActivationDtype) {
  RoutingTable t = hand_table(DType::kF32);
  Tensor y = ones({2, 3, 2}, {DType::kF64});
  EXPECT_EQ(combine_tokens(y, t).dtype(), DType::kF64);
}

TEST(Dispatch, GradientsReachTokensExpertOutputsAndWeights) {
  RoutingTable t = hand_table(DType::kF64);
  Tensor x = Tensor::from_vector<double>({0.3, -1.2, 0.7, 2.0, -0.5, 0.1}, {3, 2});
  Tensor y = Tensor::from_vector<double>({1, -2, 3, 0.5, -1, 2, 0.1, 0.2, -0.3, 1.5, 2.5, -0.7}, {2, 3, 2});
  Tensor w = t.weight.clone();
  x.set_requires_grad(true);
  y.set_requires_grad(true);
  w.set_requires_grad(true);
  auto fn = [&t](const std::vector<Tensor>& in) {
    RoutingTable table = t;
    table.weight = in[2];
    Tensor buffer = dispatch_tokens(in[0], table);
    return add(combine_tokens(in[1], table), combine_tokens(mul(buffer, buffer), table));
  };
  GradcheckResult g = gradcheck(fn, {x, y, w});
  EXPECT_TRUE(g.ok) << g.message;
  // A dropped choice passes no gradient to its weight's expert row.
  std::vector<double> gy = y.grad().to_vector<double>();
  EXPECT_EQ(gy[4], 0.0);  // expert 0, slot 2 (empty)
  EXPECT_EQ(gy[10], 0.0);  // expert 1, slot 2 (empty)
}

// Note [Packed dropless buffer]: a dropless table's buffer holds expert 0's tokens, then expert 1's, ...
// with no empty rows; combine weighs them back to their tokens, and the gradients pass through.
TEST(Dispatch, PackedBufferHoldsEachExpertsTokensInTurnAndCombinesBack) {
  // Top-1 over three experts: t0, t2, t3 to expert 0, t1 to 1, t4 to 2.
  Tensor logits = Tensor::from_vector<double>({2, 0, 0, 0, 2, 0, 2, 1, 0, 3, 0, 0, 0, 0, 1}, {5, 3});
  RoutingOptions o;
  o.drop_tokens = false;
  Generator gen(1);
  RoutingTable t = route(logits, o, gen).table;
  ASSERT_TRUE(t.packed());
  Tensor x = Tensor::from_vector<double>({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, {5, 2});
  x.set_requires_grad(true);
  Tensor buffer = dispatch_tokens(x, t);
  EXPECT_EQ(buffer.shape(), (Shape{5, 2}));
  EXPECT_EQ(buffer.to_vector<double>(), (std::vector<double>{1, 2, 5, 6, 7, 8, 3, 4, 9, 10}));
  Tensor out = combine_tokens(buffer, t);  // x scaled by each token's gate
  std::vector<double> w = t.weight.to_vector<double>(), got = out.to_vector<double>(), xs = x.to_vector<double>();
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], w[i / 2] * xs[i], 1e-12) << "element " << i;
  EXPECT_THROW(combine_tokens(buffer.view({5, 1, 2}), t), Error);  // not the (E, C, d) layout
  sum(out).backward();
  std::vector<double> gx = x.grad().to_vector<double>();
  for (size_t i = 0; i < gx.size(); ++i) EXPECT_NEAR(gx[i], w[i / 2], 1e-12) << "element " << i;
}
