// The MoE ops on the CPU: the fused routing kernel's every output for a hand-checked top-2 case,
// which choices the noise moves, the row moves' error checks, and that route() gives the same
// values with and without autograd (Note [Values from the kernel, gradients from ops]).
#include <gtest/gtest.h>

#include <cmath>

#include "mt/nn/moe_routing.h"
#include "mt/ops/moe_ops.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

using I64s = std::vector<int64_t>;

// Four tokens over three experts, two choices each.
const std::vector<double> kLogits = {3, 2, 0, 2, 3, 0, 3, 0, 2, 3, 2, 1};

Tensor logits_tensor(DType dtype = DType::kF32) { return Tensor::from_vector<double>(kLogits, {4, 3}).to(dtype); }

double logsumexp_row(int s) {
  double sum = 0;
  for (int e = 0; e < 3; ++e) sum += std::exp(kLogits[s * 3 + e]);
  return std::log(sum);
}

double prob(int s, int e) { return std::exp(kLogits[s * 3 + e] - logsumexp_row(s)); }

void expect_near_all(const Tensor& got, const std::vector<double>& want, double tol, const char* what) {
  std::vector<double> g = got.to_vector<double>();
  ASSERT_EQ(g.size(), want.size()) << what;
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], tol) << what << " element " << i;
}

}  // namespace

TEST(MoeRoute, EveryOutputOfATop2RoutingByHand) {
  MoeRouting r = moe_route(logits_tensor(DType::kF64), Tensor(), 2, 3);
  EXPECT_EQ(r.expert.to_vector<int64_t>(), (I64s{0, 1, 1, 0, 0, 2, 0, 1}));
  // Expert 0 is full with the first choices of t0, t2, t3, so t1's second choice is dropped.
  EXPECT_EQ(r.slot.to_vector<int64_t>(), (I64s{0, 1, 0, -1, 1, 0, 2, 2}));
  EXPECT_EQ(r.counts.to_vector<int64_t>(), (I64s{4, 3, 1, 3, 3, 1}));
  auto pair = [](int s, int a, int b) {
    double d = prob(s, a) + prob(s, b);
    return std::vector<double>{prob(s, a) / d, prob(s, b) / d};
  };
  std::vector<double> w;
  for (auto v : {pair(0, 0, 1), std::vector<double>{1.0, 0.0}, pair(2, 0, 2), pair(3, 0, 1)}) w.insert(w.end(), v.begin(), v.end());
  expect_near_all(r.weight, w, 1e-12, "weight");
  expect_near_all(r.lse, {logsumexp_row(0), logsumexp_row(1), logsumexp_row(2), logsumexp_row(3)}, 1e-12, "lse");
  std::vector<double> mean(3, 0.0), fraction = {0.75, 0.25, 0.0};
  double z = 0;
  for (int s = 0; s < 4; ++s) {
    for (int e = 0; e < 3; ++e) mean[e] += prob(s, e) / 4;
    z += logsumexp_row(s) * logsumexp_row(s) / 4;
  }
  double aux = 3 * (mean[0] * fraction[0] + mean[1] * fraction[1] + mean[2] * fraction[2]);
  expect_near_all(r.stats, {mean[0], mean[1], mean[2], 0.75, 0.25, 0.0, aux, z}, 1e-12, "stats");
}

TEST(MoeRoute, NoiseMovesOnlyTheNoisyChoices) {
  // Noise that favours expert 2 strongly.
  Tensor noise = Tensor::from_vector<double>({0, 0, 10, 0, 0, 10, 0, 0, 10, 0, 0, 10}, {4, 3}).to(DType::kF32);
  // Top-1: the choice itself is noisy.
  EXPECT_EQ(moe_route(logits_tensor(), noise, 1, 4).expert.to_vector<int64_t>(), (I64s{2, 2, 2, 2}));
  // Top-2: the first choice is the clean argmax, the second the noisy argmax of the rest.
  EXPECT_EQ(moe_route(logits_tensor(), noise, 2, 4).expert.to_vector<int64_t>(), (I64s{0, 2, 1, 2, 0, 2, 0, 2}));
  // Weights stay the clean gate probabilities.
  Tensor w = moe_route(logits_tensor(DType::kF64), noise.to(DType::kF64), 1, 4).weight;
  expect_near_all(w, {prob(0, 2), prob(1, 2), prob(2, 2), prob(3, 2)}, 1e-12, "noisy top-1 weight");
}

TEST(MoeRoute, RefusesBadInputs) {
  EXPECT_THROW(moe_route(logits_tensor(DType::kBF16), Tensor(), 1, 4), Error);
  EXPECT_THROW(moe_route(logits_tensor(), Tensor(), 4, 4), Error);  // top_k > experts
  EXPECT_THROW(moe_route(logits_tensor(), zeros({4, 2}), 1, 4), Error);
  EXPECT_THROW(moe_route(logits_tensor(), Tensor(), 1, -1), Error);
}

// Random token selection by hand: seven tokens, two experts, capacity 2. Expert 0 has tokens 0, 2, 3, 5, 6
// with draws 0.5, 0.9, 0.5, 0.1, 0.0: it keeps 2 (0.9) and, of the tied 0.5s, the lower token 0; slots in
// token order. Expert 1 (tokens 1, 4) keeps both, whatever their draws (token 4's is exactly 0).
TEST(MoeSelect, KeepsTheHighestDrawsTiesToTheLowerTokenSlotsInTokenOrder) {
  Tensor expert = Tensor::from_vector<int64_t>({0, 1, 0, 0, 1, 0, 0}, {7, 1});
  std::vector<double> u(14, 0.7);  // (7, 2): only each token's own expert's column counts
  const double own[] = {0.5, 0.3, 0.9, 0.5, 0.0, 0.1, 0.0};
  const I64s choice = {0, 1, 0, 0, 1, 0, 0};
  for (int t = 0; t < 7; ++t) u[t * 2 + choice[t]] = own[t];
  MoeSelection r = moe_select(expert, Tensor::from_vector<double>(u, {7, 2}, DType::kF32), 2);
  EXPECT_EQ(r.slot.to_vector<int64_t>(), (I64s{0, 0, 1, -1, 1, -1, -1}));
  EXPECT_EQ(r.kept.to_vector<int64_t>(), (I64s{2, 2}));
  MoeSelection all = moe_select(expert, Tensor::from_vector<double>(u, {7, 2}, DType::kF32), 5);
  EXPECT_EQ(all.slot.to_vector<int64_t>(), (I64s{0, 0, 1, 2, 1, 3, 4}));
  EXPECT_EQ(all.kept.to_vector<int64_t>(), (I64s{5, 2}));
  EXPECT_THROW(moe_select(expert, Tensor::from_vector<double>(u, {7, 2}, DType::kF32), 0), Error);
  EXPECT_THROW(moe_select(expert, Tensor::from_vector<double>(u, {7, 2}, DType::kF64), 2), Error);
}

TEST(MoeRows, RefuseMismatchedShapesAndWeights) {
  MoeRouting r = moe_route(logits_tensor(), Tensor(), 2, 3);
  MoeRowMap map{r.expert, r.slot, moe_buffer_map(r.expert, r.slot, 3, 3), 3};
  EXPECT_THROW(moe_permute(zeros({5, 2}), map), Error);                     // 4 tokens expected
  EXPECT_THROW(moe_unpermute(zeros({8, 2}), map, zeros({4, 2})), Error);    // 9 buffer rows expected
  EXPECT_THROW(moe_unpermute(zeros({9, 2}), map, zeros({4, 2}, {DType::kF64})), Error);  // f32 weights for f32
  EXPECT_THROW(moe_unpermute(zeros({9, 2}, {DType::kBF16}), map, zeros({4, 2}, {DType::kBF16})), Error);
  EXPECT_EQ(moe_unpermute(zeros({9, 2}, {DType::kBF16}), map, zeros({4, 2})).dtype(), DType::kBF16);
}

TEST(Route, GivesTheSameValuesWithAndWithoutAutograd) {
  Tensor logits = Tensor::from_vector<double>({0.3, -1.2, 0.7, 2.0, -0.5, 0.1, 0.9, 0.4, -0.3, 1.1, 0.2, 0.8,
                                               -0.7, 0.6, 0.0, 1.4},
                                              {4, 4});
  for (int64_t k : {1, 2}) {
    RoutingOptions o;
    o.top_k = k;
    o.min_capacity = 0;
    Generator g1(1), g2(1);
    RoutingResult plain = route(logits, o, g1);
    Tensor tracked = logits.clone();
    tracked.set_requires_grad(true);
    RoutingResult graded = route(tracked, o, g2);
    EXPECT_FALSE(plain.table.weight.requires_grad());
    EXPECT_TRUE(graded.table.weight.requires_grad());
    EXPECT_TRUE(graded.aux_loss.requires_grad());
    EXPECT_EQ(plain.table.slot.to_vector<int64_t>(), graded.table.slot.to_vector<int64_t>());
    expect_near_all(graded.table.weight, plain.table.weight.to_vector<double>(), 1e-7, "weight");
    EXPECT_EQ(plain.aux_loss.item(), graded.aux_loss.item());
    EXPECT_EQ(plain.z_loss.item(), graded.z_loss.item());
  }
}
