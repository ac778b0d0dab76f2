// Neural-network functions: softmax/log_softmax over any dim, layer norm (alone and fused with the residual
// add), embedding, fused cross-entropy (ignore_index, mean over kept rows), the distillation loss (hand
// values, T^2 scaling, no gradient to the teacher), causal attention (hand values and a composite-op
// reference), dropout (Philox mask), error messages, and f64 gradchecks.
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>

#include "mt/graph/node.h"
#include "mt/math/philox.h"
#include "op_test_util.h"

using namespace mt;
using mt::testing::distinct_values;
using mt::testing::expect_gradcheck;
using mt::testing::expect_values;
using mt::testing::leaf;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
Tensor i64(const std::vector<int64_t>& v, const Shape& s) { return Tensor::from_vector<int64_t>(v, s); }

// Causal attention from matmul, where and softmax, for cross-checking the fused kernel.
Tensor reference_attention(const Tensor& q, const Tensor& k, const Tensor& v, double scale) {
  int64_t t = q.size(2);
  std::vector<bool> lower(t * t);
  for (int64_t i = 0; i < t; ++i)
    for (int64_t j = 0; j < t; ++j) lower[i * t + j] = j <= i;
  Tensor mask = Tensor::from_vector<bool>(lower, {t, t});
  Tensor scores = mul(matmul(q, k.transpose(2, 3)), scale);
  Tensor masked = where(mask, scores, full({}, -1e300, {q.dtype()}));
  return matmul(softmax(masked, -1), v);
}

}  // namespace

TEST(Softmax, ValuesOverAnyDim) {
  expect_values(softmax(f64({1, 2, 3}, {3})), {0.09003057317038046, 0.24472847105479764, 0.6652409557748218}, 1e-15);
  expect_values(log_softmax(f64({1, 2, 3}, {3})), {-2.4076059644443806, -1.4076059644443804, -0.4076059644443804},
                1e-15);
  // Columns [1, 2, 3] and [0, 0, 0], softmax down the columns.
  Tensor m = f64({1, 0, 2, 0, 3, 0}, {3, 2});
  Tensor s0 = softmax(m, 0);
  EXPECT_EQ(s0.shape(), Shape({3, 2}));
  expect_values(s0, {0.09003057317038046, 1.0 / 3, 0.24472847105479764, 1.0 / 3, 0.6652409557748218, 1.0 / 3}, 1e-15);
  expect_values(softmax(m.transpose(0, 1), 1), {0.09003057317038046, 0.24472847105479764, 0.6652409557748218,
                                                1.0 / 3, 1.0 / 3, 1.0 / 3}, 1e-15);
  expect_values(softmax(Tensor::from_vector<float>({1000, 1000}, {2})), {0.5, 0.5});  // max-subtracted
  expect_values(log_softmax(Tensor::from_vector<float>({1, 2, 3}, {3}, DType::kBF16)), {-2.40625, -1.40625, -0.408203125});
}

TEST(LayerNorm, NormalisesTheLastDimWithWeightAndBias) {
  Tensor x = f64({1, 2, 4, 0, 0, 3}, {2, 3});
  Tensor w = f64({2, 1, 0.5}, {3});
  Tensor b = f64({1, 0, -1}, {3});
  expect_values(layer_norm(x, w, b, 1e-5), {-1.1380830629005954, -0.26726038286257453, -0.3318490428435641,
                                            -0.41421002685244734, -0.7071050134262237, -0.29289498657377633}, 1e-14);
  Tensor plain = layer_norm(f64({1, 2, 3}, {1, 3}), ones({3}, {DType::kF64}), Tensor(), 0.0);
  expect_values(plain, {-std::sqrt(1.5), 0, std::sqrt(1.5)}, 1e-15);
  Tensor xb = layer_norm(x.to(DType::kBF16), w.to(DType::kBF16), b.to(DType::kBF16), 1e-5);
  EXPECT_EQ(xb.dtype(), DType::kBF16);
  expect_values(xb, layer_norm(x, w, b, 1e-5).to_vector<double>(), 1e-2);
  EXPECT_THROW(layer_norm(x, f64({1, 1}, {2}), b), Error);
}

// Half weight and bias leaves get f32 gradients straight from the f32 column sums (Note [f32 weight
// gradients]): the sums of the f32 op over the same values, not bf16-rounded ones.
TEST(LayerNorm, HalfLeavesGetUnroundedF32WeightGradients) {
  const Shape s{7, 24};
  std::vector<double> xv(s.numel()), dyv(s.numel()), wv(24), bv(24);
  for (int64_t i = 0; i < s.numel(); ++i) xv[i] = std::sin(0.7 * i), dyv[i] = std::cos(0.3 * i);
  for (int i = 0; i < 24; ++i) wv[i] = 1.0 + 0.01 * i, bv[i] = 0.02 * i;
  auto make = [](const std::vector<double>& v, const Shape& shape, DType dt) {
    Tensor t = Tensor::from_vector<double>(v, shape, DType::kBF16).to(dt);  // bf16 values in either dtype
    t.set_requires_grad(true);
    return t;
  };
  for (bool fused : {false, true}) {
    Tensor grads[2][2];
    for (int i = 0; i < 2; ++i) {
      const DType dt = i == 0 ? DType::kBF16 : DType::kF32;
      Tensor x = make(xv, s, dt), w = make(wv, {24}, dt), b = make(bv, {24}, dt);
      Tensor y = fused ? add_layer_norm(x, zeros(s, {dt}), w, b, 1e-5).second : layer_norm(x, w, b, 1e-5);
      y.backward(Tensor::from_vector<double>(dyv, s, DType::kBF16).to(dt));
      ASSERT_EQ(w.grad().dtype(), DType::kF32);
      ASSERT_EQ(b.grad().dtype(), DType::kF32);
      grads[i][0] = w.grad(), grads[i][1] = b.grad();
    }
    expect_values(grads[0][0], grads[1][0].to_vector<double>(), 1e-6);
    expect_values(grads[0][1], grads[1][1].to_vector<double>(), 1e-6);
  }
}

// The fused op against add then layer_norm on the CPU, both outputs in the loss. f32: the same bits forward
// and backward (Note [Residual add fused with LayerNorm]); bf16: close (dx is rounded once, not twice).
TEST(AddLayerNorm, MatchesAddThenLayerNorm) {
  const Shape s{3, 5, 24};
  std::mt19937_64 rng(11);
  std::uniform_real_distribution<double> dist(-1.0, 1.0);
  auto values = [&](int64_t n) {
    std::vector<double> v(n);
    for (double& e : v) e = dist(rng);
    return v;
  };
  const std::vector<double> xv = values(s.numel()), rv = values(s.numel()), wv = values(24), bv = values(24),
                            ch = values(s.numel()), cy = values(s.numel());
  for (DType dt : {DType::kF32, DType::kBF16}) {
    auto make = [&](const std::vector<double>& v, const Shape& shape) {
      Tensor t = Tensor::from_vector<double>(v, shape, dt);
      t.set_requires_grad(true);
      return t;
    };
    Tensor c_h = Tensor::from_vector<double>(ch, s, dt), c_y = Tensor::from_vector<double>(cy, s, dt);
    // Fused.
    Tensor x = make(xv, s), r = make(rv, s), w = make(wv, {24}), b = make(bv, {24});
    auto [h, y] = add_layer_norm(x, r, w, b, 1e-5);
    add(sum(mul(h, c_h)), sum(mul(y, c_y))).backward();
    // Apart.
    Tensor x2 = make(xv, s), r2 = make(rv, s), w2 = make(wv, {24}), b2 = make(bv, {24});
    Tensor h2 = add(x2, r2);
    Tensor y2 = layer_norm(h2, w2, b2, 1e-5);
    add(sum(mul(h2, c_h)), sum(mul(y2, c_y))).backward();
    ASSERT_EQ(h.shape(), s);
    ASSERT_EQ(y.shape(), s);
    EXPECT_EQ(h.dtype(), dt);
    EXPECT_EQ(h.to_vector<double>(), h2.to_vector<double>()) << dtype_name(dt);  // the same rounded sum
    if (dt == DType::kF32) {
      EXPECT_EQ(y.to_vector<double>(), y2.to_vector<double>());
      EXPECT_EQ(x.grad().to_vector<double>(), x2.grad().to_vector<double>());
      EXPECT_EQ(r.grad().to_vector<double>(), r2.grad().to_vector<double>());
      EXPECT_EQ(w.grad().to_vector<double>(), w2.grad().to_vector<double>());
      EXPECT_EQ(b.grad().to_vector<double>(), b2.grad().to_vector<double>());
    } else {
      expect_values(y, y2.to_vector<double>(), 0);
      expect_values(x.grad(), x2.grad().to_vector<double>(), 0.05);
      expect_values(r.grad(), r2.grad().to_vector<double>(), 0.05);
      expect_values(w.grad(), w2.grad().to_vector<double>(), 0);
      expect_values(b.grad(), b2.grad().to_vector<double>(), 0);
    }
  }
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = ones({3}, {DType::kF64});
  EXPECT_THROW(add_layer_norm(x, f64({1, 2, 3}, {1, 3}), w, Tensor()), Error);  // no broadcasting
  EXPECT_THROW(add_layer_norm(x, x.to(DType::kF32), w, Tensor()), Error);
  EXPECT_THROW(add_layer_norm(x, x, ones({2}, {DType::kF64}), Tensor()), Error);
}

TEST(Embedding, LooksUpRowsForIdsOfAnyShape) {
  Tensor weight = leaf({0, 1, 10, 11, 20, 21, 30, 31}, {4, 2});
  Tensor ids = Tensor::from_vector<int32_t>({3, 0, 1, 3}, {2, 2});
  Tensor out = embedding(weight, ids);
  EXPECT_EQ(out.shape(), Shape({2, 2, 2}));
  expect_values(out, {30, 31, 0, 1, 10, 11, 30, 31});
  sum(out).backward();
  expect_values(weight.grad(), {1, 1, 1, 1, 0, 0, 2, 2});  // id 3 used twice
  EXPECT_THROW(embedding(weight, i64({4}, {1})), Error);
}

TEST(CrossEntropy, PerRowAndMeanLosses) {
  Tensor logits = leaf({1, 2, 3, 1, 1, 1}, {2, 3});
  Tensor per_row = cross_entropy_per_row(logits, i64({2, 0}, {2}));
  expect_values(per_row, {0.4076059644443804, std::log(3.0)}, 1e-15);
  Tensor loss = cross_entropy(logits, i64({2, 0}, {2}));
  EXPECT_EQ(loss.shape(), Shape({}));
  EXPECT_NEAR(loss.item(), 0.7531091265562451, 1e-15);
  loss.backward();
  expect_values(logits.grad(), {0.04501528658519023, 0.12236423552739882, -0.1673795221125891, -1.0 / 3, 1.0 / 6,
                                1.0 / 6}, 1e-15);
  Tensor f = Tensor::from_vector<float>({1, 2, 3, 1, 1, 1}, {2, 3});
  EXPECT_EQ(cross_entropy_per_row(f, i64({2, 0}, {2})).dtype(), DType::kF32);
  EXPECT_NEAR(cross_entropy(f.to(DType::kBF16), Tensor::from_vector<int32_t>({2, 0}, {2})).item(), 0.7531, 1e-3);
}

TEST(CrossEntropy, IgnoredRowsAreZeroAndLeaveTheMean) {
  Tensor logits = leaf({1, 2, 3, 1, 1, 1}, {2, 3});
  expect_values(cross_entropy_per_row(logits, i64({2, -100}, {2})), {0.4076059644443804, 0}, 1e-15);
  Tensor loss = cross_entropy(logits, i64({2, -100}, {2}));
  EXPECT_NEAR(loss.item(), 0.4076059644443804, 1e-15);
  loss.backward();
  expect_values(logits.grad(), {0.09003057317038046, 0.24472847105479764, -0.3347590442251782, 0, 0, 0}, 1e-15);
  expect_values(cross_entropy_per_row(logits, i64({2, 0}, {2}), /*ignore_index=*/0), {0.4076059644443804, 0}, 1e-15);
  EXPECT_EQ(cross_entropy(logits, i64({-100, -100}, {2})).item(), 0.0);  // nothing kept: 0, not NaN
}

// Note [Gradients over saved memory]: logits that only cross-entropy's saved copy can see take their own
// gradient; logits someone still holds, or a graph kept for a second backward, get a new buffer. A probe
// node under the logits sees where the gradient arrives; the gradients are the same every way.
TEST(CrossEntropy, GradientReusesTheLogitsOnlyWhenNothingReadsThemAgain) {
  const std::vector<double> expected = {0.04501528658519023, 0.12236423552739882, -0.1673795221125891, -1.0 / 3,
                                        1.0 / 6, 1.0 / 6};
  enum class Case { kDropped, kHeld, kRetained };
  for (Case c : {Case::kDropped, Case::kHeld, Case::kRetained}) {
    Tensor w = leaf({1, 2, 3, 1, 1, 1}, {2, 3});
    Tensor logits = mul(w.detach(), 1.0);  // (2, 3), memory of its own
    const void* arrived = nullptr;
    record_function("Probe", {w}, {logits}, [&arrived](const std::vector<Tensor>& g) {
      arrived = g[0].data_ptr();
      return std::vector<Tensor>{g[0].to(DType::kF64)};
    });
    const void* logits_memory = logits.data_ptr();
    Tensor loss = cross_entropy(logits, i64({2, 0}, {2}));
    if (c != Case::kHeld) logits = Tensor();
    loss.backward(Tensor(), /*retain_graph=*/c == Case::kRetained);
    EXPECT_EQ(arrived == logits_memory, c == Case::kDropped) << static_cast<int>(c);
    expect_values(w.grad(), expected, 1e-15);
    if (c == Case::kHeld) expect_values(logits, {1, 2, 3, 1, 1, 1}, 0.0);  // still the logits
    if (c == Case::kRetained) {
      loss.backward();  // the saved logits were kept intact for this
      std::vector<double> twice;
      for (double v : expected) twice.push_back(2 * v);
      expect_values(w.grad(), twice, 1e-15);
    }
  }
}

TEST(CrossEntropy, ErrorsNameTheBadTargetAndShapes) {
  try {
    cross_entropy(zeros({2, 3}), i64({1, 5}, {2}));
    FAIL() << "expected an out-of-range target error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("target 5"), std::string::npos) << e.what();
  }
  EXPECT_THROW(cross_entropy(zeros({2, 3}), i64({1, 1, 1}, {3})), Error);
}

TEST(DistillationLoss, KlOfTemperatureSoftmaxesTimesTSquared) {
  // Teacher softmax (0.75, 0.25) against the student's (0.5, 0.5): KL = 0.75 ln 1.5 + 0.25 ln 0.5.
  Tensor student = f64({0, 0}, {1, 2}), teacher = f64({std::log(3.0), 0}, {1, 2});
  EXPECT_NEAR(distillation_loss(student, teacher).item(), 0.13081203594113708, 1e-15);
  EXPECT_NEAR(distillation_loss(student, teacher, 2.0).item(), 0.14536313148189434, 1e-15);
  // Two rows: the mean over rows.
  Tensor s2 = f64({1, 2, 3, 0, -1, 0.5}, {2, 3}), t2 = f64({3, 2, 1, 0.2, 0.1, -0.3}, {2, 3});
  EXPECT_NEAR(distillation_loss(s2, t2, 1.5).item(), 0.761129635659276, 1e-14);
  EXPECT_NEAR(distillation_loss(t2, t2).item(), 0.0, 1e-15);
  // bf16 logits: the loss is computed in f32.
  EXPECT_EQ(distillation_loss(s2.to(DType::kBF16), t2.to(DType::kBF16)).dtype(), DType::kF32);
}

TEST(DistillationLoss, GradientReachesTheStudentOnlyAndErrorsNameShapes) {
  Tensor student = leaf({1, 2, 3, 0, -1, 0.5}, {2, 3}), teacher = leaf({3, 2, 1, 0.2, 0.1, -0.3}, {2, 3});
  distillation_loss(student, teacher, 2.0).backward();
  EXPECT_TRUE(student.grad().defined());
  EXPECT_FALSE(teacher.grad().defined());
  // d/ds of T^2 * KL / N is T * (softmax(s / T) - softmax(t / T)) / N.
  Tensor expected = mul(sub(softmax(mul(student.detach(), 0.5)), softmax(mul(teacher.detach(), 0.5))), 2.0 / 2);
  std::vector<double> e = expected.to_vector<double>();
  expect_values(student.grad(), e, 1e-14);
  try {
    distillation_loss(zeros({2, 3}), zeros({2, 4}));
    ADD_FAILURE() << "no error";
  } catch (const Error& err) {
    EXPECT_NE(std::string(err.what()).find("[2, 3]"), std::string::npos) << err.what();
    EXPECT_NE(std::string(err.what()).find("[2, 4]"), std::string::npos) << err.what();
  }
  EXPECT_THROW(distillation_loss(zeros({2, 3}), zeros({2, 3}), 0.0), Error);
}

TEST(DistillationLoss, FusedKernelMatchesTheComposedDefinitionAndSkipsMaskedLogits) {
  // Composed from log_softmax for (7, 13) logits at T 1.3: loss and gradient, in f64 and f32.
  const double temp = 1.3;
  Tensor s = leaf(distinct_values(91, 0.37), {7, 13});
  Tensor t = f64(distinct_values(91, 0.61), {7, 13});
  Tensor log_pt = log_softmax(mul(t, 1 / temp)), log_ps = log_softmax(mul(s, 1 / temp));
  Tensor ref = mul(sum(mul(exp(log_pt), sub(log_pt, log_ps))), temp * temp / 7);
  ref.backward();
  Tensor ref_grad = s.grad().clone();
  s.zero_grad();
  Tensor loss = distillation_loss(s, t, temp);
  // KL = E_t[(t - s) / T] - lse_t + lse_s cancels terms of up to |logit| / T = 43 here: a few ulps of 43.
  EXPECT_NEAR(loss.item(), ref.item(), 1e-13);
  loss.backward();
  expect_values(s.grad(), ref_grad.to_vector<double>(), 1e-15);
  EXPECT_NEAR(distillation_loss(s.detach().to(DType::kF32), t.to(DType::kF32), temp).item(), ref.item(), 3e-5);
  // A vocabulary entry masked (-inf) in both adds nothing: the loss of the other entries, not NaN.
  Tensor sm = f64({0, -INFINITY, 1, 2, -INFINITY, 0.5}, {2, 3}), tm = f64({1, -INFINITY, 0, 0, -INFINITY, 1}, {2, 3});
  Tensor s2 = f64({0, 1, 2, 0.5}, {2, 2}), t2 = f64({1, 0, 0, 1}, {2, 2});
  EXPECT_NEAR(distillation_loss(sm, tm).item(), distillation_loss(s2, t2).item(), 1e-15);
}

TEST(CausalAttention, HandValues) {
  // Row 0 sees only key 0; row 1 scores [0, ln 3] -> probabilities [1/4, 3/4].
  Tensor q = f64({5, 7, 1, 0}, {1, 1, 2, 2});
  Tensor k = f64({0, 0, std::log(3.0), 0}, {1, 1, 2, 2});
  Tensor v = f64({1, 2, 5, 6}, {1, 1, 2, 2});
  expect_values(causal_attention(q, k, v, 1.0), {1, 2, 4, 5}, 1e-14);
}

TEST(CausalAttention, MatchesCompositeReferenceIncludingGradients) {
  Shape s{2, 2, 5, 3};
  Tensor q = leaf(distinct_values(60, 0.05), s), k = leaf(distinct_values(60, 0.07), s), v = leaf(distinct_values(60, 0.1), s);
  Tensor ref = reference_attention(q, k, v, 1.0 / std::sqrt(3.0));
  Tensor out = causal_attention(q, k, v);  // default scale 1/sqrt(D)
  expect_values(out, ref.to_vector<double>(), 1e-13);
  Tensor w = f64(distinct_values(60, 0.3), s);
  sum(mul(ref, w)).backward();
  Tensor gq = q.grad(), gk = k.grad(), gv = v.grad();
  q.zero_grad();
  k.zero_grad();
  v.zero_grad();
  sum(mul(out, w)).backward();  // delta = dout . out cancels against dP: rounding differs at ~1e-13
  expect_values(q.grad(), gq.to_vector<double>(), 1e-11);
  expect_values(k.grad(), gk.to_vector<double>(), 1e-11);
  expect_values(v.grad(), gv.to_vector<double>(), 1e-11);
  // f32 against the f64 result.
  expect_values(causal_attention(q.to(DType::kF32), k.to(DType::kF32), v.to(DType::kF32)), ref.to_vector<double>(), 1e-5);
}

// Note [Packed QKV]: the packed op equals causal_attention on the heads split out of the same rows, and
// its one gradient buffer equals the three gradients scattered back into (B, T, 3C).
TEST(CausalAttention, PackedQkvEqualsSplitHeadsIncludingGradients) {
  int64_t b = 2, t = 5, h = 3, d = 2, c = h * d;
  Tensor qkv = leaf(distinct_values(b * t * 3 * c, 0.05), {b, t, 3 * c});
  Tensor w = f64(distinct_values(b * t * c, 0.3), {b, t, c});
  Tensor y = causal_attention_qkv(qkv, h);
  ASSERT_EQ(y.shape(), (Shape{b, t, c}));
  sum(mul(y, w)).backward();
  Tensor packed_grad = qkv.grad();
  qkv.zero_grad();
  auto head = [&](int i) { return qkv.narrow(2, i * c, c).reshape({b, t, h, d}).transpose(1, 2); };  // (B, H, T, D)
  Tensor ref = causal_attention(head(0), head(1), head(2)).transpose(1, 2).reshape({b, t, c});
  expect_values(y, ref.to_vector<double>(), 1e-15);
  sum(mul(ref, w)).backward();
  expect_values(packed_grad, qkv.grad().to_vector<double>(), 1e-15);
  expect_gradcheck([h](const std::vector<Tensor>& x) { return causal_attention_qkv(x[0], h, 0.7); },
                   {leaf(distinct_values(2 * 3 * 18, 0.2), {2, 3, 18})});
  EXPECT_THROW(causal_attention_qkv(qkv, 4), Error);  // 3C = 18 is not 3 * 4 * D
}

TEST(Dropout, MaskComesFromPhiloxAndScalesKeptValues) {
  Generator gen(123);
  gen.reserve(8);  // the op must start where the generator stands
  Tensor x = leaf(distinct_values(40), {5, 8});
  Tensor out = dropout(x, 0.25, gen);
  EXPECT_EQ(gen.state().offset, 48u);
  std::vector<double> xv = x.to_vector<double>(), ov = out.to_vector<double>(), expected_grad(40);
  int kept = 0;
  for (int i = 0; i < 40; ++i) {
    bool keep = philox_uniform(123, 8 + i) >= 0.25f;
    kept += keep;
    EXPECT_NEAR(ov[i], keep ? xv[i] / 0.75 : 0.0, 1e-15) << i;
    expected_grad[i] = keep ? 1.0 / 0.75 : 0.0;
  }
  EXPECT_GT(kept, 20);
  EXPECT_LT(kept, 40);
  sum(out).backward();
  expect_values(x.grad(), expected_grad, 1e-15);
  EXPECT_TRUE(dropout(x, 0.0, gen).is_same(x));
  EXPECT_EQ(gen.state().offset, 48u);
  EXPECT_THROW(dropout(x, 1.0, gen), Error);
}

TEST(NnFunctionalGrad, SoftmaxAndLayerNorm) {
  Tensor a = leaf(distinct_values(24), {2, 3, 4});
  expect_gradcheck([](const std::vector<Tensor>& x) { return softmax(x[0], -1); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& x) { return softmax(x[0], 1); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& x) { return log_softmax(x[0], 0); }, {a});
  expect_gradcheck([](const std::vector<Tensor>& x) { return log_softmax(x[0].transpose(0, 2), -1); }, {a});
  Tensor w = leaf({1.5, -0.5, 0.8, 1.1}, {4});
  Tensor b = leaf({0.1, 0.2, -0.3, 0.4}, {4});
  expect_gradcheck([](const std::vector<Tensor>& x) { return layer_norm(x[0], x[1], x[2], 1e-5); }, {a, w, b});
  expect_gradcheck([](const std::vector<Tensor>& x) { return layer_norm(x[0], x[1], Tensor(), 1e-5); }, {a, w});
}

// Both outputs in the loss (dh and dy), only y (dh undefined), only h (dy undefined: w and b get none), and
// transposed inputs (copied to rows; the gradient goes back through the views).
TEST(NnFunctionalGrad, AddLayerNorm) {
  Tensor x = leaf(distinct_values(24), {2, 3, 4});
  Tensor r = leaf(distinct_values(24, 0.07), {2, 3, 4});
  Tensor w = leaf({1.5, -0.5, 0.8, 1.1}, {4});
  Tensor b = leaf({0.1, 0.2, -0.3, 0.4}, {4});
  expect_gradcheck([](const std::vector<Tensor>& in) {
    auto [h, y] = add_layer_norm(in[0], in[1], in[2], in[3], 1e-5);
    return cat({h, y}, 0);
  }, {x, r, w, b});
  expect_gradcheck([](const std::vector<Tensor>& in) {
    auto [h, y] = add_layer_norm(in[0], in[1], in[2], in[3], 1e-5);
    return mul(h, y);  // each output's gradient depends on the other
  }, {x, r, w, b});
  auto only_y = [](const std::vector<Tensor>& in) { return add_layer_norm(in[0], in[1], in[2], in[3], 1e-5).second; };
  auto only_h = [](const std::vector<Tensor>& in) { return add_layer_norm(in[0], in[1], in[2], in[3], 1e-5).first; };
  expect_gradcheck(only_y, {x, r, w, b});
  expect_gradcheck(only_y, {x, r, w, Tensor()});  // no bias
  expect_gradcheck(only_h, {x, r, w, b});
  expect_gradcheck([](const std::vector<Tensor>& in) {
    auto [h, y] = add_layer_norm(in[0].transpose(0, 1), in[1].transpose(0, 1), in[2], in[3], 1e-5);
    return cat({h, y}, 2);
  }, {x, r, w, b});
  // Only h used: the node gets no dy, so the weights get no gradient at all (as apart: LayerNorm is not run).
  Tensor x2 = leaf(distinct_values(24), {2, 3, 4}), r2 = leaf(distinct_values(24, 0.07), {2, 3, 4});
  Tensor w2 = leaf({1.5, -0.5, 0.8, 1.1}, {4});
  sum(add_layer_norm(x2, r2, w2, Tensor(), 1e-5).first).backward();
  EXPECT_FALSE(w2.grad().defined());
  expect_values(x2.grad(), std::vector<double>(24, 1.0), 0);
  expect_values(r2.grad(), std::vector<double>(24, 1.0), 0);
}

TEST(NnFunctionalGrad, EmbeddingCrossEntropyDistillationAttentionDropout) {
  Tensor weight = leaf(distinct_values(10), {5, 2});
  Tensor ids = i64({4, 0, 4, 2}, {2, 2});
  expect_gradcheck([ids](const std::vector<Tensor>& x) { return embedding(x[0], ids); }, {weight});
  Tensor logits = leaf(distinct_values(15), {3, 5});
  Tensor targets = i64({4, -100, 1}, {3});
  expect_gradcheck([targets](const std::vector<Tensor>& x) { return cross_entropy(x[0], targets); }, {logits});
  expect_gradcheck([targets](const std::vector<Tensor>& x) { return cross_entropy_per_row(x[0], targets); }, {logits});
  Tensor teacher = Tensor::from_vector<double>(distinct_values(15, 0.7), {3, 5});
  expect_gradcheck([teacher](const std::vector<Tensor>& x) { return distillation_loss(x[0], teacher, 1.7); }, {logits});
  Shape s{1, 2, 3, 2};
  Tensor q = leaf(distinct_values(12, 0.2), s), k = leaf(distinct_values(12, 0.3), s), v = leaf(distinct_values(12, 0.4), s);
  expect_gradcheck([](const std::vector<Tensor>& x) { return causal_attention(x[0], x[1], x[2], 0.7); }, {q, k, v});
  Tensor d = leaf(distinct_values(20), {4, 5});
  expect_gradcheck([](const std::vector<Tensor>& x) {
    Generator gen(5);  // the same mask on every call
    return dropout(x[0], 0.3, gen);
  }, {d});
}
