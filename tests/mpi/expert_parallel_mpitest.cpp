// Expert parallelism under 2 and 4 ranks: the autograd all-to-all, and a MoE layer whose experts are
// split over the expert-parallel group against the same layer unsplit on every rank (f64), dropping,
// residual and dropless: outputs, input and gate gradients equal; each held expert's gradient is the
// sum of the group's unsplit ones. The hierarchical all-to-all (nodes of 2 ranks declared on one host)
// against the flat one, bit for bit, alone and inside the layer; node groups and dist.node_size errors.
#include <gtest/gtest.h>

#include "mt/dist/expert_parallel.h"
#include "mt/dist/process_groups.h"
#include "mt/graph/grad_mode.h"
#include "mt/nn/moe_layer.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

Tensor rank_values(const Shape& s, int rank, double scale) {
  return mul(add(arange(0, s.numel(), 1, {DType::kF64}), 100.0 * rank), scale).view(s);
}

void expect_equal(const Tensor& got, const Tensor& want, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  std::vector<float> g = got.to_vector<float>(), w = want.to_vector<float>();
  for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(g[i], w[i]) << what << " element " << i;
}

void expect_near(const Tensor& got, const Tensor& want, double tol, const std::string& what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  std::vector<double> g = got.to_vector<double>(), w = want.to_vector<double>();
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], w[i], tol) << what << " element " << i;
}

}  // namespace

TEST(ExpertParallel, AllToAllSendsChunksAndItsGradientBack) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  // chunk j (2 rows) of rank r holds 10 * r + j; after the exchange chunk i holds 10 * i + r.
  std::vector<double> v;
  for (int j = 0; j < n; ++j)
    for (int k = 0; k < 6; ++k) v.push_back(10.0 * r + j);
  Tensor x = Tensor::from_vector<double>(v, {2 * n, 3});
  x.set_requires_grad(true);
  Tensor y = all_to_all(x, w);
  std::vector<double> got = y.to_vector<double>();
  for (int i = 0; i < n; ++i) EXPECT_EQ(got[6 * i], 10.0 * i + r);
  // d sum(y * c) / dx where c's chunk i is (i + 1): x's chunk j went to rank j as its chunk r.
  std::vector<double> c;
  for (int i = 0; i < n; ++i)
    for (int k = 0; k < 6; ++k) c.push_back(i + 1.0);
  sum(mul(y, Tensor::from_vector<double>(c, {2 * n, 3}))).backward();
  std::vector<double> g = x.grad().to_vector<double>();
  for (int j = 0; j < n; ++j) EXPECT_EQ(g[6 * j], r + 1.0) << "chunk " << j;
  EXPECT_THROW(all_to_all(zeros({2 * n + 1, 3}), w), Error);
}

TEST(ExpertParallel, SplitLayerMatchesTheUnsplitLayer) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  for (int variant = 0; variant < 3; ++variant) {
    bool residual = variant == 1, dropless = variant == 2;
    MoEConfig c;
    c.d_model = 4;
    c.hidden = 6;
    c.experts = 2 * n;
    c.top_k = 2;
    c.min_capacity = 1;
    c.capacity_factor = 0.75;  // some tokens dropped
    c.mlp_type = residual ? MlpType::kResidual : MlpType::kStandard;
    c.drop_tokens = !dropless;  // dropless: each rank's largest count differs, the group takes the largest
    ProcessGroups groups(w, n, {static_cast<int>(c.experts)});
    const ExpertGroups* g = groups.groups_for(static_cast<int>(c.experts));
    ASSERT_NE(g, nullptr);
    Generator init_a(7), init_b(7), gen_a(9), gen_b(9);
    MoELayer whole(c, init_a), split(c, init_b, g);
    whole.to(DType::kF64);
    split.to(DType::kF64);
    ASSERT_EQ(split.experts().experts(), 2);
    Tensor xa = rank_values({3, 5, 4}, r, 0.013), xb = xa.clone();  // different tokens on every rank
    xa.set_requires_grad(true);
    xb.set_requires_grad(true);
    Tensor wa = tanh(rank_values({3, 5, 4}, r, 0.7));
    Tensor ya = whole.forward(xa, gen_a), yb = split.forward(xb, gen_b);
    expect_near(yb, ya, 1e-13, "output");
    add(sum(mul(ya, wa)), whole.weighted_loss()).backward();
    add(sum(mul(yb, wa)), split.weighted_loss()).backward();
    expect_near(xb.grad(), xa.grad(), 1e-13, "input gradient");
    expect_near(split.gate().weight().grad(), whole.gate().weight().grad(), 1e-13, "gate gradient");
    // Expert e lives on rank e / 2 and collects the gradients of every rank's tokens.
    Tensor whole_w1 = whole.experts().w1().grad().contiguous();
    w.all_reduce(whole_w1, ReduceKind::kSum);
    expect_near(split.experts().w1().grad(), whole_w1.narrow(0, 2 * r, 2), 1e-12, "held experts' w1 gradient");
    Tensor whole_b2 = whole.experts().b2().grad().contiguous();
    w.all_reduce(whole_b2, ReduceKind::kSum);
    expect_near(split.experts().b2().grad(), whole_b2.narrow(0, 2 * r, 2), 1e-12, "held experts' b2 gradient");
    // The held experts start from the unsplit layer's values for them.
    NoGradGuard ng;
    expect_near(split.experts().w2(), whole.experts().w2().narrow(0, 2 * r, 2), 0, "initial w2 of the held experts");
  }
}

TEST(ExpertParallel, GroupsPerLayerSizeAndErrorsNameTheLayer) {
  Communicator w = Communicator::world();
  int n = w.size();
  ProcessGroups ep(w, n, {0, n, 0, 2 * n, 0, 1});
  EXPECT_EQ(ep.size_for(2 * n), n);
  EXPECT_EQ(ep.groups_for(n)->ep.size(), n);
  EXPECT_EQ(ep.groups_for(n)->expert_dp.size(), 1);
  EXPECT_EQ(ep.groups_for(1), nullptr);  // one expert: nothing to split
  try {
    ProcessGroups bad(w, n, {0, n + 1});
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("block 1 has " + std::to_string(n + 1) + " experts"), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(ProcessGroups(w, n + 1, {}), Error);
}

TEST(ExpertParallel, HierarchicalAllToAllEqualsTheFlatOneBitForBit) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  if (n % 2 != 0) GTEST_SKIP() << "needs an even number of ranks";
  // Nodes of 2 ranks: on 4 ranks both phases move data (2 nodes of 2); on 2 ranks, one node.
  Communicator intra = w.split(r / 2, r), inter = w.split(r % 2, r);
  auto values = [](int rank) { return cast(tanh(rank_values({6 * 4, 5}, rank, 0.37)), DType::kF32); };
  Tensor xa = values(r).narrow(0, 0, 3 * n).contiguous(), xb = xa.clone();
  xa.set_requires_grad(true);
  xb.set_requires_grad(true);
  Tensor flat = all_to_all(xa, w), two_phase = hierarchical_all_to_all(xb, intra, inter);
  expect_equal(two_phase, flat, "exchanged rows");
  // Chunk i (3 rows) came from rank i, where it was chunk r.
  for (int i = 0; i < n; ++i)
    expect_equal(two_phase.narrow(0, 3 * i, 3), values(i).narrow(0, 3 * r, 3), "chunk from rank " + std::to_string(i));
  Tensor c = cast(rank_values({3 * n, 5}, r, 0.011), DType::kF32);
  sum(mul(flat, c)).backward();
  sum(mul(two_phase, c)).backward();
  expect_equal(xb.grad(), xa.grad(), "gradient");
  EXPECT_THROW(hierarchical_all_to_all(zeros({n + 1, 5}), intra, inter), Error);
}

TEST(ExpertParallel, HierarchicalDispatcherGivesTheFlatLayersResults) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  if (n < 4 || n % 2 != 0) GTEST_SKIP() << "needs 2 nodes of 2 ranks or more";
  for (bool dropless : {false, true}) {
    MoEConfig c;
    c.d_model = 4;
    c.hidden = 6;
    c.experts = 2 * n;
    c.top_k = 2;
    c.min_capacity = 1;
    c.capacity_factor = 0.75;
    c.drop_tokens = !dropless;
    const int e = static_cast<int>(c.experts);
    ProcessGroups flat_groups(w, n, {e}, /*node_size=*/1), node_groups(w, n, {e}, /*node_size=*/2);
    ASSERT_FALSE(flat_groups.groups_for(e)->intra_node);
    ASSERT_TRUE(node_groups.groups_for(e)->intra_node);
    Generator init_a(7), init_b(7), gen_a(9), gen_b(9);
    MoELayer flat(c, init_a, flat_groups.groups_for(e)), two_phase(c, init_b, node_groups.groups_for(e));
    Tensor xa = cast(tanh(rank_values({3, 5, 4}, r, 0.013)), DType::kF32), xb = xa.clone();
    xa.set_requires_grad(true);
    xb.set_requires_grad(true);
    Tensor wa = cast(tanh(rank_values({3, 5, 4}, r, 0.7)), DType::kF32);
    Tensor ya = flat.forward(xa, gen_a), yb = two_phase.forward(xb, gen_b);
    expect_equal(yb, ya, "output");
    add(sum(mul(ya, wa)), flat.weighted_loss()).backward();
    add(sum(mul(yb, wa)), two_phase.weighted_loss()).backward();
    expect_equal(xb.grad(), xa.grad(), "input gradient");
    expect_equal(two_phase.gate().weight().grad(), flat.gate().weight().grad(), "gate gradient");
    expect_equal(two_phase.experts().w1().grad(), flat.experts().w1().grad(), "held experts' w1 gradient");
  }
}

TEST(ProcessGroups, NodeGroupsOfADeclaredNodeSizeAndItsErrors) {
  Communicator w = Communicator::world();
  int n = w.size(), r = w.rank();
  if (n < 4 || n % 2 != 0) GTEST_SKIP() << "needs 2 nodes of 2 ranks or more";
  ProcessGroups groups(w, n, {0, n}, /*node_size=*/2);
  const ExpertGroups& g = *groups.groups_for(n);
  ASSERT_TRUE(g.intra_node && g.inter_node);
  EXPECT_EQ(g.intra_node->size(), 2);
  EXPECT_EQ(g.intra_node->rank(), r % 2);
  EXPECT_EQ(g.inter_node->size(), n / 2);
  EXPECT_EQ(g.inter_node->rank(), r / 2);
  // A group within one node needs no second phase.
  EXPECT_FALSE(ProcessGroups(w, 2, {2}, /*node_size=*/2).groups_for(2)->intra_node);
  try {
    ProcessGroups bad(w, n, {n}, /*node_size=*/3);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("dist.node_size = 3 does not divide"), std::string::npos) << e.what();
  }
  // 6-rank groups over nodes of 4 would span part of a node.
  EXPECT_THROW(check_node_size(4, 12, 6), Error);
  EXPECT_NO_THROW(check_node_size(4, 12, 2));
  EXPECT_NO_THROW(check_node_size(2, 12, 6));
}
