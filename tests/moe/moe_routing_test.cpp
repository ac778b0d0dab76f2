// Gating tests: capacity, exact routing tables for top-1/top-2 with and without dropping,
// tie-breaking, random token selection, Gumbel noise, aux and z losses by hand, and gradients.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/autograd/gradcheck.h"
#include "mt/nn/moe_routing.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

using I64s = std::vector<int64_t>;

Tensor logits_of(const std::vector<std::vector<double>>& rows, DType dtype = DType::kF32) {
  std::vector<double> flat;
  for (const auto& r : rows) flat.insert(flat.end(), r.begin(), r.end());
  return Tensor::from_vector<double>(flat, {static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())})
      .to(dtype);
}

std::vector<double> softmax_row(const std::vector<double>& r) {
  double m = r[0], s = 0;
  for (double v : r) m = std::max(m, v);
  std::vector<double> p;
  for (double v : r) s += std::exp(v - m);
  for (double v : r) p.push_back(std::exp(v - m) / s);
  return p;
}

RoutingOptions options(int64_t k, double cf, int64_t min_capacity, bool drop = true) {
  RoutingOptions o;
  o.top_k = k;
  o.capacity_factor = cf;
  o.min_capacity = min_capacity;
  o.drop_tokens = drop;
  // The deterministic tables: DeepSpeed's random defaults are tested on their own below.
  o.random_token_selection = false;
  o.second_expert_sampling = false;
  return o;
}

void expect_weights(const Tensor& w, const std::vector<double>& expected) {
  std::vector<double> got = w.to_vector<double>();
  ASSERT_EQ(got.size(), expected.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], expected[i], 1e-6) << "weight " << i;
}

// Six tokens over three experts; expert 0 is everyone's favourite.
const std::vector<std::vector<double>> kTop1Logits = {
    {2, 0, 0}, {0, 2, 0}, {2, 1, 0}, {3, 0, 0}, {0, 0, 1}, {1, 0, 0}};

}  // namespace

TEST(ExpertCapacity, FollowsTheFormula) {
  EXPECT_EQ(expert_capacity(6, 3, 1, 1.0, 0), 2);
  EXPECT_EQ(expert_capacity(10, 4, 1, 1.0, 0), 3);   // ceil(2.5)
  EXPECT_EQ(expert_capacity(4, 3, 2, 0.5, 0), 2);    // ceil(4/3 * 0.5 * 2)
  EXPECT_EQ(expert_capacity(4, 3, 2, 1.0, 0), 3);
  EXPECT_EQ(expert_capacity(6, 3, 1, 1.0, 4), 4);    // min_capacity wins
  EXPECT_EQ(expert_capacity(64, 8, 1, 1.25, 4), 10);
}

TEST(ExpertCapacity, RoundsTheProductToF32AsDeepSpeed) {
  // 25 / 2 * 1.2 is 15 in f64 but 15.000001 in f32, so DeepSpeed's capacity is 16.
  EXPECT_EQ(expert_capacity(25, 2, 1, 1.2, 0), 16);
  EXPECT_EQ(expert_capacity(35, 3, 1, 1.2, 0), 15);
}

TEST(Route, Top1KeepsTheEarliestTokensUpToCapacity) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop1Logits), options(1, 1.0, 0), gen);
  EXPECT_EQ(r.table.capacity, 2);
  EXPECT_EQ(r.table.expert.to_vector<int64_t>(), (I64s{0, 1, 0, 0, 2, 0}));
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 0, 1, -1, 0, -1}));
  std::vector<double> w;
  for (size_t s = 0; s < kTop1Logits.size(); ++s) {
    int64_t e = r.table.expert.to_vector<int64_t>()[s];
    bool kept = r.table.slot.to_vector<int64_t>()[s] >= 0;
    w.push_back(kept ? softmax_row(kTop1Logits[s])[e] : 0.0);  // top-1: not renormalised
  }
  expect_weights(r.table.weight, w);
  EXPECT_EQ(r.stats.routed(), (I64s{4, 1, 1}));
  EXPECT_EQ(r.stats.kept(), (I64s{2, 1, 1}));
  EXPECT_DOUBLE_EQ(r.stats.drop_rate(), 2.0 / 6.0);
  // Buffer rows (expert-major, 2 slots each): t0, t2 | t1, empty | t4, empty.
  EXPECT_EQ(r.table.buffer_choice.to_vector<int64_t>(), (I64s{0, 2, 1, -1, 4, -1}));
  EXPECT_FALSE(r.table.packed());
  EXPECT_EQ(gen.state().offset, 0u);  // nothing random was asked for
}

TEST(Route, Top1DroplessTakesTheLargestCount) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop1Logits), options(1, 1.0, 0, /*drop=*/false), gen);
  EXPECT_EQ(r.table.capacity, 4);
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 0, 1, 2, 0, 3}));
  EXPECT_EQ(r.stats.kept(), (I64s{4, 1, 1}));
  EXPECT_EQ(r.stats.drop_rate(), 0.0);
  // Note [Packed dropless buffer]: experts 0, 1, 2 hold rows 0-3, 4 and 5, no padding (not 3 x 4 rows).
  ASSERT_TRUE(r.table.packed());
  EXPECT_EQ(r.table.expert_rows, (I64s{4, 1, 1}));
  EXPECT_EQ(r.table.buffer_rows(), 6);
  EXPECT_EQ(r.table.buffer_row.to_vector<int64_t>(), (I64s{0, 4, 1, 2, 5, 3}));
  EXPECT_EQ(r.table.buffer_choice.to_vector<int64_t>(), (I64s{0, 2, 3, 5, 1, 4}));
}

TEST(Route, DroplessPackedRowsComeInWholeBlocks) {
  Generator gen(1);
  RoutingOptions o = options(1, 1.0, 0, /*drop=*/false);
  o.packed_row_block = 4;  // counts 4, 1, 1 -> 4 rows each, the last three of experts 1 and 2 empty
  RoutingResult r = route(logits_of(kTop1Logits), o, gen);
  EXPECT_EQ(r.table.expert_rows, (I64s{4, 4, 4}));
  EXPECT_EQ(r.table.buffer_rows(), 12);
  EXPECT_EQ(r.table.buffer_row.to_vector<int64_t>(), (I64s{0, 4, 1, 2, 8, 3}));
  EXPECT_EQ(r.table.buffer_choice.to_vector<int64_t>(), (I64s{0, 2, 3, 5, 1, -1, -1, -1, 4, -1, -1, -1}));
  o.packed_row_block = -1;
  EXPECT_THROW(route(logits_of(kTop1Logits), o, gen), Error);
}

TEST(Route, Top1WithRoomForAllDropsNothing) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop1Logits), options(1, 2.0, 0), gen);
  EXPECT_EQ(r.table.capacity, 4);
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 0, 1, 2, 0, 3}));
}

// Four tokens over three experts with two choices each.
const std::vector<std::vector<double>> kTop2Logits = {{3, 2, 0}, {2, 3, 0}, {3, 0, 2}, {3, 2, 1}};

TEST(Route, Top2SecondChoicesFillSlotsAfterAllFirstChoices) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop2Logits), options(2, 1.0, 0), gen);
  ASSERT_EQ(r.table.capacity, 3);
  EXPECT_EQ(r.table.expert.to_vector<int64_t>(), (I64s{0, 1, 1, 0, 0, 2, 0, 1}));
  // Expert 0 is full with first choices (t0, t2, t3), so t1's second choice is dropped; expert 1
  // has t1 first, then the second choices of t0 and t3.
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 1, 0, -1, 1, 0, 2, 2}));
  auto p = [&](int s, int e) { return softmax_row(kTop2Logits[s])[e]; };
  expect_weights(r.table.weight, {p(0, 0) / (p(0, 0) + p(0, 1)), p(0, 1) / (p(0, 0) + p(0, 1)),  //
                                  1.0, 0.0,  // renormalised over the kept choice
                                  p(2, 0) / (p(2, 0) + p(2, 2)), p(2, 2) / (p(2, 0) + p(2, 2)),
                                  p(3, 0) / (p(3, 0) + p(3, 1)), p(3, 1) / (p(3, 0) + p(3, 1))});
  EXPECT_EQ(r.stats.routed(), (I64s{4, 3, 1}));
  EXPECT_EQ(r.stats.kept(), (I64s{3, 3, 1}));
  EXPECT_DOUBLE_EQ(r.stats.drop_rate(), 1.0 / 8.0);
}

TEST(Route, Top2WithSmallCapacityDropsBothChoicesOfALateToken) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop2Logits), options(2, 0.5, 0), gen);
  ASSERT_EQ(r.table.capacity, 2);
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 1, 0, -1, 1, 0, -1, -1}));
  std::vector<double> w = r.table.weight.to_vector<double>();
  EXPECT_EQ(w[6], 0.0);
  EXPECT_EQ(w[7], 0.0);
  EXPECT_NEAR(w[2], 1.0, 1e-6);
}

TEST(Route, Top2DroplessInSequenceMajorOrderPacksEveryChoice) {
  Generator gen(1);
  RoutingOptions o = options(2, 1.0, 0, /*drop=*/false);
  o.sequence_length = 2;  // two sequences of two tokens, routed position by position: t0, t2, t1, t3
  RoutingResult r = route(logits_of(kTop2Logits), o, gen);
  ASSERT_TRUE(r.table.packed());
  EXPECT_EQ(r.table.expert_rows, (I64s{4, 3, 1}));
  // Expert 0 takes the first choices in routing order (t0, t2, t3) and then t1's second; expert 1 t1's
  // first, then the second choices of t0 and t3; expert 2 t2's second.
  EXPECT_EQ(r.table.buffer_row.to_vector<int64_t>(), (I64s{0, 5, 4, 3, 1, 7, 2, 6}));
  EXPECT_EQ(r.table.buffer_choice.to_vector<int64_t>(), (I64s{0, 4, 6, 3, 2, 1, 7, 5}));
}

TEST(Route, Top2DroplessKeepsEveryChoice) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop2Logits), options(2, 1.0, 0, /*drop=*/false), gen);
  EXPECT_EQ(r.table.capacity, 4);  // expert 0: three first choices and one second
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 1, 0, 3, 1, 0, 2, 2}));
  EXPECT_EQ(r.stats.drop_rate(), 0.0);
}

TEST(Route, TopKGeneralRenormalisesOverKChoices) {
  Generator gen(1);
  std::vector<std::vector<double>> rows = {{0.5, 2, 1, 0}, {1, 0, 3, 2}};
  RoutingResult r = route(logits_of(rows), options(3, 1.0, 4), gen);
  EXPECT_EQ(r.table.expert.to_vector<int64_t>(), (I64s{1, 2, 0, 2, 3, 0}));
  // topkgating: one cumulative sum in token order, whatever the choice level (t1 -> e2 after t0).
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, 0, 0, 1, 0, 1}));
  std::vector<double> p0 = softmax_row(rows[0]), p1 = softmax_row(rows[1]);
  double d0 = p0[1] + p0[2] + p0[0], d1 = p1[2] + p1[3] + p1[0];
  expect_weights(r.table.weight, {p0[1] / d0, p0[2] / d0, p0[0] / d0, p1[2] / d1, p1[3] / d1, p1[0] / d1});
}

TEST(Route, TiesGoToTheLowestExpert) {
  Generator gen(1);
  RoutingResult r1 = route(logits_of({{1, 1, 0}, {0, 2, 2}}), options(1, 1.0, 4), gen);
  EXPECT_EQ(r1.table.expert.to_vector<int64_t>(), (I64s{0, 1}));
  RoutingResult r2 = route(logits_of({{2, 1, 1}, {0, 3, 3}}), options(2, 1.0, 4), gen);
  EXPECT_EQ(r2.table.expert.to_vector<int64_t>(), (I64s{0, 1, 1, 2}));
}

TEST(Route, AuxLossUsesFirstChoicesBeforeDropping) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop1Logits), options(1, 1.0, 0), gen);
  // me = mean gate per expert; ce = fraction of first choices per expert (4, 1, 1 of 6).
  std::vector<double> me(3, 0.0), ce = {4.0 / 6, 1.0 / 6, 1.0 / 6};
  for (const auto& row : kTop1Logits)
    for (int e = 0; e < 3; ++e) me[e] += softmax_row(row)[e] / 6;
  double aux = 3 * (me[0] * ce[0] + me[1] * ce[1] + me[2] * ce[2]);
  EXPECT_NEAR(r.aux_loss.item(), aux, 1e-6);

  RoutingResult r2 = route(logits_of(kTop2Logits), options(2, 0.5, 0), gen);
  std::vector<double> me2(3, 0.0), ce2 = {3.0 / 4, 1.0 / 4, 0.0};
  for (const auto& row : kTop2Logits)
    for (int e = 0; e < 3; ++e) me2[e] += softmax_row(row)[e] / 4;
  EXPECT_NEAR(r2.aux_loss.item(), 3 * (me2[0] * ce2[0] + me2[1] * ce2[1]), 1e-6);
}

TEST(Route, ZLossIsTheMeanSquaredLogSumExp) {
  Generator gen(1);
  RoutingResult r = route(logits_of(kTop2Logits), options(2, 1.0, 0), gen);
  double z = 0;
  for (const auto& row : kTop2Logits) {
    double s = 0;
    for (double v : row) s += std::exp(v);
    z += std::log(s) * std::log(s) / 4;
  }
  EXPECT_NEAR(r.z_loss.item(), z, 1e-5);
}

TEST(Route, RandomTokenSelectionKeepsTheHighestPriorities) {
  // Eight tokens, all preferring expert 1 of 2; capacity 2.
  std::vector<std::vector<double>> rows(8, {0.0, 1.0});
  RoutingOptions o = options(1, 0.5, 0);
  o.random_token_selection = true;
  Generator gen(42);
  RoutingResult r = route(logits_of(rows), o, gen);
  ASSERT_EQ(r.table.capacity, 2);

  Generator replay(42);
  std::vector<float> u = rand({8, 2}, replay).to_vector<float>();  // the priorities route drew
  std::vector<int64_t> order = {0, 1, 2, 3, 4, 5, 6, 7};
  std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return u[a * 2 + 1] > u[b * 2 + 1]; });
  I64s expected(8, -1);
  int64_t lo = std::min(order[0], order[1]), hi = std::max(order[0], order[1]);
  expected[lo] = 0;  // kept tokens take slots in token order
  expected[hi] = 1;
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), expected);
  EXPECT_EQ(gen.state().offset, replay.state().offset);

  Generator again(42);
  EXPECT_EQ(route(logits_of(rows), o, again).table.slot.to_vector<int64_t>(), expected);
}

TEST(Route, GumbelNoiseIsDeterministicForAGenerator) {
  std::vector<std::vector<double>> rows = {{0.1, 0.0, 0.2}, {0.0, 0.1, 0.0}, {0.3, 0.2, 0.1}, {0, 0, 0}};
  RoutingOptions o = options(1, 2.0, 0);
  o.gumbel_noise = true;
  Generator a(5), b(5);
  RoutingResult ra = route(logits_of(rows), o, a), rb = route(logits_of(rows), o, b);
  EXPECT_EQ(ra.table.expert.to_vector<int64_t>(), rb.table.expert.to_vector<int64_t>());
  EXPECT_GT(a.state().offset, 0u);

  // The choice is argmax(logits + G) with G = -log(-log(U)), U drawn in f64.
  Generator replay(5);
  std::vector<double> u = uniform({4, 3}, 1e-20, 1.0, replay, {DType::kF64}).to_vector<double>();
  I64s expected;
  for (int s = 0; s < 4; ++s) {
    int best = 0;
    double best_v = -1e300;
    for (int e = 0; e < 3; ++e) {
      double v = static_cast<float>(rows[s][e]) + static_cast<float>(-std::log(-std::log(u[s * 3 + e])));
      if (v > best_v) best_v = v, best = e;
    }
    expected.push_back(best);
  }
  EXPECT_EQ(ra.table.expert.to_vector<int64_t>(), expected);
}

TEST(Route, RandomTokenSelectionIsTheTop1DefaultAndUsesTheGivenPriorities) {
  // Eight tokens, all preferring expert 1 of 2; capacity 2; U(0, 1) fed through options.noise.
  std::vector<std::vector<double>> rows(8, {0.0, 1.0});
  RoutingOptions o;
  o.capacity_factor = 0.5;
  o.min_capacity = 0;
  RoutingNoise noise;
  noise.uniform = logits_of({{0.9, 0.1}, {0.1, 0.3}, {0.9, 0.8}, {0.9, 0.2}, {0.9, 0.05}, {0.9, 0.95}, {0.9, 0.4}, {0.9, 0.6}});
  o.noise = &noise;
  Generator gen(3);
  RoutingResult r = route(logits_of(rows), o, gen);
  ASSERT_EQ(r.table.capacity, 2);
  // Priorities mask x U: expert 1 keeps tokens 5 (0.95) and 2 (0.8); slots in token order.
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{-1, -1, 0, -1, -1, 1, -1, -1}));
  EXPECT_EQ(gen.state().offset, 0u);  // nothing drawn from the generator
}

TEST(Route, SecondExpertSamplingIsTheTop2DefaultWithTheGivenGumbelDraw) {
  std::vector<std::vector<double>> rows = {{3, 2, 0}, {2, 3, 0}};
  RoutingOptions o;
  o.top_k = 2;
  o.min_capacity = 4;
  RoutingNoise noise;
  noise.gumbel = logits_of({{0, 0, 5}, {9, 0, 0}});
  o.noise = &noise;
  Generator gen(3);
  RoutingResult r = route(logits_of(rows), o, gen);
  // First choices stay argmax(logits); the second is argmax(logits + G) over the other experts.
  EXPECT_EQ(r.table.expert.to_vector<int64_t>(), (I64s{0, 2, 1, 0}));
  std::vector<double> p0 = softmax_row(rows[0]), p1 = softmax_row(rows[1]);
  expect_weights(r.table.weight, {p0[0] / (p0[0] + p0[2]), p0[2] / (p0[0] + p0[2]), p1[1] / (p1[1] + p1[0]),
                                  p1[0] / (p1[1] + p1[0])});
  o.second_expert_sampling = false;
  EXPECT_EQ(route(logits_of(rows), o, gen).table.expert.to_vector<int64_t>(), (I64s{0, 1, 1, 0}));
}

TEST(Route, SequenceMajorOrderDropsLatePositionsOfEverySequence) {
  // Two sequences of four positions (batch-major rows), all preferring expert 0 of 2; capacity 2.
  std::vector<std::vector<double>> rows(8, {1.0, 0.0});
  RoutingOptions o = options(1, 0.5, 0);
  Generator gen(1);
  EXPECT_EQ(route(logits_of(rows), o, gen).table.slot.to_vector<int64_t>(), (I64s{0, 1, -1, -1, -1, -1, -1, -1}));
  o.sequence_length = 4;
  RoutingResult r = route(logits_of(rows), o, gen);
  // Position 0 of sequence 0, then position 0 of sequence 1.
  EXPECT_EQ(r.table.slot.to_vector<int64_t>(), (I64s{0, -1, -1, -1, 1, -1, -1, -1}));
  EXPECT_EQ(r.table.expert.to_vector<int64_t>(), I64s(8, 0));
  o.sequence_length = 3;
  EXPECT_THROW(route(logits_of(rows), o, gen), Error);
}

TEST(Route, TopKAboveTwoFollowsDeepSpeedTopkGating) {
  std::vector<std::vector<double>> rows = {{0.5, 2, 1, 0}, {1, 0, 3, 2}, {2, 1, 0, 0.5}, {0, 1, 2, 3}};
  Generator gen(1);
  // Capacity ceil(4 / 4 * 0.25 * 3) = 1: each expert keeps its chosen pair of highest gate probability.
  RoutingResult r = route(logits_of(rows), options(3, 0.25, 0), gen);
  ASSERT_EQ(r.table.capacity, 1);
  I64s expert = r.table.expert.to_vector<int64_t>(), slot = r.table.slot.to_vector<int64_t>();
  std::vector<double> me(4, 0.0), ce(4, 0.0), best(4, -1.0);
  std::vector<int64_t> keeper(4, -1);
  for (int s = 0; s < 4; ++s) {
    std::vector<double> p = softmax_row(rows[s]);
    for (int e = 0; e < 4; ++e) me[e] += p[e] / 4;
    for (int j = 0; j < 3; ++j) {
      int64_t e = expert[s * 3 + j];
      ce[e] += 1.0 / 4;
      if (p[e] > best[e]) best[e] = p[e], keeper[e] = s;
    }
  }
  for (int s = 0; s < 4; ++s)
    for (int j = 0; j < 3; ++j) EXPECT_EQ(slot[s * 3 + j], keeper[expert[s * 3 + j]] == s ? 0 : -1) << s << "," << j;
  double aux = 0;
  for (int e = 0; e < 4; ++e) aux += me[e] * ce[e] / 4;
  EXPECT_NEAR(r.aux_loss.item(), aux * 16 / 3, 1e-6);  // E^2 / k * mean(me * ce), ce over all k choices
}

TEST(Route, WeightsAndAuxLossAreDifferentiable) {
  // Clear margins between the top choices, so finite differences do not change the routing.
  Tensor logits = logits_of({{1.5, 0.2, -0.4, 0.9}, {0.1, 1.2, 0.6, -0.5}, {-0.3, 0.4, 1.7, 0.8},
                             {0.9, -0.6, 0.0, 1.8}, {1.4, 0.5, 0.3, -0.2}},
                            DType::kF64);
  logits.set_requires_grad(true);
  for (int64_t k : {1, 2}) {
    auto fn = [k](const std::vector<Tensor>& in) {
      Generator gen(3);
      RoutingResult r = route(in[0], options(k, 1.0, 1), gen);
      return cat({r.table.weight.reshape({-1}), r.aux_loss.reshape({1}), r.z_loss.reshape({1})}, 0);
    };
    GradcheckResult g = gradcheck(fn, {logits});
    EXPECT_TRUE(g.ok) << "k = " << k << ": " << g.message;
  }
}
