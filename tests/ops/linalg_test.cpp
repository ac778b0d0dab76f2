// Linear algebra: matmul (1-d, 2-d, batched, broadcast batch dims, strided), bmm, linear with bias, the
// MLP ops (dense and the experts' batched one), the fused LM head loss, the Matmul kernel's accumulate/bias/half-type contract,
// error messages, f64 gradchecks.
#include <gtest/gtest.h>

#include <string>

#include "mt/ops/kernel_table.h"
#include "op_test_util.h"

using namespace mt;
using mt::testing::distinct_values;
using mt::testing::expect_gradcheck;
using mt::testing::expect_values;
using mt::testing::leaf;

namespace {

Tensor f64(const std::vector<double>& v, const Shape& s) { return Tensor::from_vector<double>(v, s); }
Tensor targets_of(const std::vector<int64_t>& v) { return Tensor::from_vector<int64_t>(v, {static_cast<int64_t>(v.size())}); }

// Naive reference: a (.., M, K) @ b (.., K, N), both already expanded to the same batch.
std::vector<double> naive_matmul(const Tensor& a, const Tensor& b) {
  std::vector<double> av = a.contiguous().to_vector<double>(), bv = b.contiguous().to_vector<double>();
  int64_t m = a.size(-2), k = a.size(-1), n = b.size(-1), batch = a.numel() / (m * k);
  std::vector<double> out(batch * m * n, 0.0);
  for (int64_t p = 0; p < batch; ++p)
    for (int64_t i = 0; i < m; ++i)
      for (int64_t j = 0; j < n; ++j)
        for (int64_t c = 0; c < k; ++c) out[(p * m + i) * n + j] += av[(p * m + i) * k + c] * bv[(p * k + c) * n + j];
  return out;
}

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST(Matmul, TwoDimensional) {
  Tensor a = f64({1, 2, 3, 4}, {2, 2});
  Tensor b = f64({5, 6, 7, 8}, {2, 2});
  expect_values(matmul(a, b), {19, 22, 43, 50});
  Tensor f = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor g = Tensor::from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  expect_values(matmul(f, g), {4, 5, 10, 11});
}

TEST(Matmul, OneDimensionalOperandsFollowNumpy) {
  Tensor v = f64({1, 2, 3}, {3});
  Tensor dot = matmul(v, f64({4, 5, 6}, {3}));
  EXPECT_EQ(dot.shape(), Shape({}));
  EXPECT_EQ(dot.item(), 32);
  Tensor vm = matmul(f64({1, 2}, {2}), f64({5, 6, 7, 8}, {2, 2}));
  EXPECT_EQ(vm.shape(), Shape({2}));
  expect_values(vm, {19, 22});
  Tensor mv = matmul(f64({1, 2, 3, 4}, {2, 2}), f64({1, 1}, {2}));
  EXPECT_EQ(mv.shape(), Shape({2}));
  expect_values(mv, {3, 7});
  Tensor bv = matmul(f64({1, 2, 3, 4, 5, 6, 7, 8}, {2, 2, 2}), f64({1, -1}, {2}));  // batched matrix @ vector
  EXPECT_EQ(bv.shape(), Shape({2, 2}));
  expect_values(bv, {-1, -1, -1, -1});
}

TEST(Matmul, BatchDimsBroadcast) {
  Tensor a = f64(distinct_values(2 * 1 * 2 * 3), {2, 1, 2, 3});
  Tensor b = f64(distinct_values(3 * 3 * 2, 0.5), {3, 3, 2});
  Tensor out = matmul(a, b);
  EXPECT_EQ(out.shape(), Shape({2, 3, 2, 2}));
  expect_values(out, naive_matmul(a.expand({2, 3, 2, 3}), b.expand({2, 3, 3, 2})));
  Tensor w = f64(distinct_values(3 * 4, 0.3), {3, 4});  // shared right operand (folded into M)
  expect_values(matmul(a, w), naive_matmul(a, w.expand({2, 1, 3, 4})));
  Tensor m = f64(distinct_values(2 * 2, 0.7), {2, 2});  // shared left operand
  expect_values(matmul(m, b.narrow(2, 0, 2).transpose(1, 2)), naive_matmul(m.expand({3, 2, 2}), b.narrow(2, 0, 2).transpose(1, 2)));
}

TEST(Matmul, StridedInputs) {
  Tensor a = f64({1, 2, 3, 4, 5, 6}, {3, 2}).transpose(0, 1);  // [[1, 3, 5], [2, 4, 6]]
  Tensor b = f64({1, 0, 2, 0, 1, 3, 1, 1, 4}, {3, 3}).narrow(1, 1, 2);  // [[0, 2], [1, 3], [1, 4]]
  expect_values(matmul(a, b), {8, 31, 10, 40});
}

TEST(Matmul, EmptyInnerDimGivesZeros) {
  Tensor out = matmul(zeros({2, 0}, {DType::kF64}), zeros({0, 3}, {DType::kF64}));
  EXPECT_EQ(out.shape(), Shape({2, 3}));
  expect_values(out, {0, 0, 0, 0, 0, 0});
}

TEST(Matmul, HalfTypesAccumulateInF32AndRoundOnce) {
  // 1 + 2^-8 + 2^-8 = 1 + 2^-7 is a bf16 value; rounding after each add would give 1.
  for (DType dt : {DType::kBF16, DType::kF16}) {
    Tensor a = Tensor::from_vector<float>({1.0f, 0.00390625f, 0.00390625f}, {1, 3}, dt);
    Tensor b = Tensor::from_vector<float>({1, 1, 1}, {3, 1}, dt);
    Tensor out = matmul(a, b);
    EXPECT_EQ(out.dtype(), dt);
    EXPECT_EQ(out.to_vector<float>()[0], 1.0078125f) << dtype_name(dt);
  }
  Tensor a = Tensor::from_vector<float>({1, 2, 3, 4}, {2, 2}, DType::kBF16);
  Tensor b = Tensor::from_vector<float>({5, 6, 7, 8}, {2, 2}, DType::kBF16);
  expect_values(matmul(a, b), {19, 22, 43, 50});
}

// Note [f32 weight gradients]: half operands may write an f32 out, unrounded. 1 + 2^-9 + 2^-9 = 1 + 2^-8
// is an f32 value but not a bf16 one (a bf16 out rounds it to 1).
TEST(Matmul, HalfOperandsWidenToAnUnroundedF32Out) {
  auto kernel = kernels().matmul.get(Device::cpu(), "matmul");
  for (DType dt : {DType::kBF16, DType::kF16}) {
    Tensor a = Tensor::from_vector<float>({1.0f, 0.001953125f, 0.001953125f}, {1, 1, 3}, dt);
    Tensor b = Tensor::from_vector<float>({1, 1, 1}, {1, 3, 1}, dt);
    Tensor out = Tensor::from_vector<float>({0.5f}, {1, 1, 1}, DType::kF32);
    kernel(a, Transpose::kNo, b, Transpose::kNo, out, Tensor(), Accumulate::kNo);
    EXPECT_EQ(out.to_vector<float>()[0], 1.00390625f) << dtype_name(dt);
    kernel(a, Transpose::kNo, b, Transpose::kNo, out, Tensor(), Accumulate::kYes);
    EXPECT_EQ(out.to_vector<float>()[0], 2.0078125f) << dtype_name(dt);
    Tensor bias = Tensor::from_vector<float>({1}, {1}, dt);
    EXPECT_NE(error_of([&] { kernel(a, Transpose::kNo, b, Transpose::kNo, out, bias, Accumulate::kNo); })
                  .find("or out f32 from half a and b, without bias"),
              std::string::npos);
  }
  Tensor a = Tensor::from_vector<float>({1}, {1, 1, 1}, DType::kF32);
  Tensor out = Tensor::empty({1, 1, 1}, DType::kF64);
  EXPECT_NE(error_of([&] { kernel(a, Transpose::kNo, a, Transpose::kNo, out, Tensor(), Accumulate::kNo); })
                .find("must share one dtype"),
            std::string::npos);
}

TEST(Matmul, KernelTransposesBiasAndAccumulate) {
  auto kernel = kernels().matmul.get(Device::cpu(), "matmul");
  for (DType dt : {DType::kF32, DType::kF64, DType::kF16}) {
    Tensor at = Tensor::from_vector<double>({1, 3, 2, 4}, {1, 2, 2}, dt);  // A^T of [[1, 2], [3, 4]]
    Tensor bt = Tensor::from_vector<double>({5, 7, 6, 8}, {1, 2, 2}, dt);  // B^T of [[5, 6], [7, 8]]
    Tensor bias = Tensor::from_vector<double>({100, 200}, {2}, dt);
    Tensor out = Tensor::empty({1, 2, 2}, dt);
    kernel(at, Transpose::kYes, bt, Transpose::kYes, out, bias, Accumulate::kNo);
    expect_values(out, {119, 222, 143, 250});
    kernel(at, Transpose::kYes, bt, Transpose::kYes, out, Tensor(), Accumulate::kYes);  // out += A @ B
    expect_values(out, {138, 244, 186, 300});
    kernel(at, Transpose::kYes, bt, Transpose::kYes, out, bias, Accumulate::kYes);  // out += A @ B + bias
    expect_values(out, {257, 466, 329, 550});
  }
  // Shared (batch 1) right operand against a batch of 2 left operands.
  Tensor a = Tensor::from_vector<double>({1, 0, 0, 1, 2, 0, 0, 2}, {2, 2, 2});
  Tensor b = Tensor::from_vector<double>({1, 2, 3, 4}, {1, 2, 2});
  Tensor out = Tensor::empty({2, 2, 2}, DType::kF64);
  kernel(a, Transpose::kNo, b, Transpose::kNo, out, Tensor(), Accumulate::kNo);
  expect_values(out, {1, 2, 3, 4, 2, 4, 6, 8});
}

TEST(Matmul, BmmMultipliesEachBatchEntry) {
  Tensor a = f64({1, 2, 3, 4, 1, 0, 0, 1}, {2, 2, 2});
  Tensor b = f64({5, 6, 7, 8, 9, 8, 7, 6}, {2, 2, 2});
  expect_values(bmm(a, b), {19, 22, 43, 50, 9, 8, 7, 6});
  EXPECT_THROW(bmm(a, f64({1, 2, 3, 4}, {1, 2, 2})), Error);
}

TEST(Linear, AppliesWeightTransposeAndBias) {
  Tensor x = f64({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = f64({1, 0, -1, 0.5, 0.5, 0.5}, {2, 3});
  Tensor b = f64({10, -1}, {2});
  expect_values(linear(x, w, b), {8, 2, 8, 6.5});
  expect_values(linear(x, w), {-2, 3, -2, 7.5});
  Tensor x3 = f64({1, 2, 3, 4, 5, 6}, {1, 2, 3});
  EXPECT_EQ(linear(x3, w, b).shape(), Shape({1, 2, 2}));
  Tensor xf = Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {2, 3}, DType::kBF16);
  expect_values(linear(xf, w.to(DType::kBF16), b.to(DType::kBF16)), {8, 2, 8, 6.5});
}

TEST(Linear, ErrorsNameShapesAndDtypes) {
  std::string e = error_of([] { matmul(zeros({2, 3}), zeros({4, 5})); });
  EXPECT_NE(e.find("inner dims"), std::string::npos) << e;
  EXPECT_NE(e.find("[2, 3]"), std::string::npos) << e;
  EXPECT_NE(e.find("[4, 5]"), std::string::npos) << e;
  e = error_of([] { linear(zeros({2, 3}, {DType::kF32}), zeros({4, 3}, {DType::kF64})); });
  EXPECT_NE(e.find("f32"), std::string::npos) << e;
  EXPECT_NE(e.find("f64"), std::string::npos) << e;
  e = error_of([] { linear(zeros({2, 3}), zeros({4, 5})); });
  EXPECT_NE(e.find("[2, 3]"), std::string::npos) << e;
  EXPECT_NE(e.find("[4, 5]"), std::string::npos) << e;
  e = error_of([] { linear(zeros({2, 3}), zeros({4, 3}), zeros({5})); });
  EXPECT_NE(e.find("bias"), std::string::npos) << e;
}

TEST(MatmulGrad, EveryOperandLayout) {
  Tensor m23 = leaf(distinct_values(6), {2, 3});
  Tensor m32 = leaf(distinct_values(6, 0.2), {3, 2});
  Tensor v3 = leaf(distinct_values(3, 0.3), {3});
  Tensor v2 = leaf(distinct_values(2, 0.4), {2});
  auto mm = [](const std::vector<Tensor>& x) { return matmul(x[0], x[1]); };
  expect_gradcheck(mm, {m23, m32});
  expect_gradcheck(mm, {v3, m32});
  expect_gradcheck(mm, {m23, v3});
  expect_gradcheck(mm, {v3, leaf(distinct_values(3, 0.5), {3})});
  expect_gradcheck(mm, {v3, leaf(distinct_values(12, 0.3), {2, 3, 2})});  // vector @ batch of matrices
  expect_gradcheck(mm, {leaf(distinct_values(12, 0.3), {2, 2, 3}), v3});  // batch of matrices @ vector
  Tensor a4 = leaf(distinct_values(2 * 1 * 2 * 3), {2, 1, 2, 3});
  Tensor b3 = leaf(distinct_values(3 * 3 * 2, 0.3), {3, 3, 2});
  expect_gradcheck(mm, {a4, b3});                       // both broadcast: (2, 1) x (3)
  expect_gradcheck(mm, {a4, m32});                      // shared right operand (folded)
  expect_gradcheck(mm, {leaf(distinct_values(4), {2, 2}), leaf(distinct_values(8, 0.3), {2, 2, 2})});  // shared left
  expect_gradcheck(mm, {leaf(distinct_values(8), {1, 2, 2, 2}), leaf(distinct_values(4), {1, 2, 2})});
  expect_gradcheck([](const std::vector<Tensor>& x) { return matmul(x[0].transpose(0, 1), x[1].transpose(0, 1)); },
                   {m32, m23});
  expect_gradcheck([](const std::vector<Tensor>& x) { return bmm(x[0], x[1]); },
                   {leaf(distinct_values(12), {2, 2, 3}), leaf(distinct_values(12, 0.3), {2, 3, 2})});
}

TEST(LinearGrad, WithAndWithoutBias) {
  Tensor x = leaf(distinct_values(2 * 2 * 3), {2, 2, 3});
  Tensor w = leaf(distinct_values(4 * 3, 0.3), {4, 3});
  Tensor b = leaf(distinct_values(4, 0.5), {4});
  expect_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1], in[2]); }, {x, w, b});
  expect_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0], in[1]); }, {x, w});
  expect_gradcheck([](const std::vector<Tensor>& in) { return linear(in[0].transpose(0, 1), in[1]); }, {x, w});
}

// Note [f32 weight gradients]: a bf16 parameter's gradient comes out of its GEMM in f32, unrounded (the
// sum 1 + 2^-9 + 2^-9 over three rows is not a bf16 value); an input's gradient keeps the input's dtype
// until its own leaf gathers it; a weight that is not a leaf (here a view) gets a bf16 gradient, which
// its leaf then gathers in f32 as before.
TEST(LinearGrad, HalfParametersGetUnroundedF32Gradients) {
  auto bf16_leaf = [](const std::vector<float>& v, const Shape& s) {
    Tensor t = Tensor::from_vector<float>(v, s, DType::kBF16);
    t.set_requires_grad(true);
    return t;
  };
  Tensor x = bf16_leaf({1.0f, 0.001953125f, 0.001953125f}, {3, 1});  // three rows, one feature
  Tensor w = bf16_leaf({1.0f}, {1, 1}), b = bf16_leaf({0.0f}, {1});
  linear(x, w, b).backward(Tensor::from_vector<float>({1, 1, 1}, {3, 1}, DType::kBF16));
  ASSERT_EQ(w.grad().dtype(), DType::kF32);
  EXPECT_EQ(w.grad().to_vector<float>()[0], 1.00390625f);  // dY^T @ X, not rounded to bf16's 1
  EXPECT_EQ(b.grad().to_vector<float>()[0], 3.0f);
  EXPECT_EQ(x.grad().dtype(), DType::kF32);
  EXPECT_EQ(x.grad().to_vector<float>(), (std::vector<float>{1, 1, 1}));

  Tensor v = bf16_leaf({1.0f, 2.0f}, {2, 1});
  linear(x, v.narrow(0, 0, 1)).backward(Tensor::from_vector<float>({1, 1, 1}, {3, 1}, DType::kBF16));
  ASSERT_EQ(v.grad().dtype(), DType::kF32);
  EXPECT_EQ(v.grad().to_vector<float>(), (std::vector<float>{1.0f, 0.0f}));  // through the view: bf16-rounded
}

// A parameter used by a GEMM (f32 gradient) and by another op (bf16 gradient), as the tied embedding is:
// the engine sums the two in f32.
TEST(LinearGrad, TiedHalfParameterSumsMixedGradients) {
  Tensor w = Tensor::from_vector<float>({1.0f, 2.0f, 3.0f, 4.0f}, {2, 2}, DType::kBF16);
  w.set_requires_grad(true);
  Tensor x = Tensor::from_vector<float>({1.0f, 0.5f}, {1, 2}, DType::kBF16);
  // Either gradient may reach the engine first (the op recorded last runs first in the backward).
  for (bool gemm_first : {false, true}) {
    Tensor head = sum(cast(linear(x, w), DType::kF32)), square = sum(cast(mul(w, w), DType::kF32));
    if (gemm_first) {
      square = sum(cast(mul(w, w), DType::kF32));
      head = sum(cast(linear(x, w), DType::kF32));
    }
    add(head, square).backward();
    ASSERT_EQ(w.grad().dtype(), DType::kF32);
    // d/dw of sum(x @ w^T) = x per row; of sum(w * w) = 2 w.
    EXPECT_EQ(w.grad().to_vector<float>(), (std::vector<float>{3.0f, 4.5f, 7.0f, 8.5f})) << gemm_first;
    w.zero_grad();
  }
}

// Note [GELU in the GEMM epilogue]: on the CPU mlp_gelu runs the parts, so it gives linear -> gelu -> linear's
// values and gradients exactly; its own f64 gradcheck covers the fused backward's wiring.
TEST(MlpGelu, EqualsLinearGeluLinearWithGradients) {
  Tensor x = leaf(distinct_values(2 * 3 * 4), {2, 3, 4});
  Tensor w1 = leaf(distinct_values(8 * 4, 0.3), {8, 4}), b1 = leaf(distinct_values(8, 0.5), {8});
  Tensor w2 = leaf(distinct_values(4 * 8, 0.2), {4, 8}), b2 = leaf(distinct_values(4, 0.4), {4});
  std::vector<Tensor> all{x, w1, b1, w2, b2};
  Tensor g = Tensor::from_vector<double>(distinct_values(24, 0.7), {2, 3, 4});
  Tensor fused = mlp_gelu(x, w1, b1, w2, b2);
  sum(mul(fused, g)).backward();
  std::vector<std::vector<double>> fused_grads;
  for (Tensor& t : all) {
    fused_grads.push_back(t.grad().to_vector<double>());
    t.zero_grad();
  }
  Tensor parts = linear(gelu(linear(x, w1, b1)), w2, b2);
  sum(mul(parts, g)).backward();
  EXPECT_EQ(fused.to_vector<double>(), parts.to_vector<double>());
  for (size_t i = 0; i < all.size(); ++i) EXPECT_EQ(fused_grads[i], all[i].grad().to_vector<double>()) << "input " << i;
  expect_gradcheck([](const std::vector<Tensor>& in) { return mlp_gelu(in[0], in[1], in[2], in[3], in[4]); }, all);
  EXPECT_NE(error_of([&] { mlp_gelu(x, w2, b1, w2, b2); }).find("mlp_gelu: expected x (.., d), w1 (hidden, d)"),
            std::string::npos);
}

// The experts' MLP is the dense one batched over experts with (in, out) weights: each expert's output and
// every gradient equal bmm -> bias -> gelu -> bmm -> bias of that expert (f64), and an f64 gradcheck covers
// the shared backward's transposes.
TEST(ExpertsMlpGelu, EqualsEachExpertsBmmGeluBmmWithGradients) {
  const int64_t experts = 3, capacity = 2, d = 4, hidden = 8;
  // Scales keep the activations O(1): with weights up to ~30 the f64 forward's rounding, divided by the
  // finite difference's 2 eps, came within the tolerance on some BLAS kernels' summation orders.
  Tensor x = leaf(distinct_values(experts * capacity * d), {experts, capacity, d});
  Tensor w1 = leaf(distinct_values(experts * d * hidden, 0.01), {experts, d, hidden});
  Tensor b1 = leaf(distinct_values(experts * hidden, 0.05), {experts, 1, hidden});
  Tensor w2 = leaf(distinct_values(experts * hidden * d, 0.01), {experts, hidden, d});
  Tensor b2 = leaf(distinct_values(experts * d, 0.1), {experts, 1, d});
  std::vector<Tensor> all{x, w1, b1, w2, b2};
  Tensor g = Tensor::from_vector<double>(distinct_values(experts * capacity * d, 0.7), {experts, capacity, d});
  Tensor fused = experts_mlp_gelu(x, w1, b1, w2, b2);
  EXPECT_EQ(fused.shape(), Shape({experts, capacity, d}));
  sum(mul(fused, g)).backward();
  std::vector<std::vector<double>> fused_grads;
  for (Tensor& t : all) {
    fused_grads.push_back(t.grad().to_vector<double>());
    t.zero_grad();
  }
  Tensor parts = add(bmm(gelu(add(bmm(x, w1), b1)), w2), b2);
  sum(mul(parts, g)).backward();
  expect_values(fused, parts.to_vector<double>(), 1e-13);
  for (size_t i = 0; i < all.size(); ++i) expect_values(all[i].grad(), fused_grads[i], 1e-12);
  expect_gradcheck([](const std::vector<Tensor>& in) { return experts_mlp_gelu(in[0], in[1], in[2], in[3], in[4]); },
                   all);
  std::string e = error_of([&] { experts_mlp_gelu(x, w2, b1, w2, b2); });
  EXPECT_NE(e.find("experts_mlp_gelu: expected x (E, C, d), w1 (E, d, hidden)"), std::string::npos) << e;
}

// Note [Packed dropless buffer]: the packed op equals the batched op over the same rows padded to the
// largest count (padding rows zero, their output gradient zero), values and all five gradients; an
// expert without rows gets zero gradients; gradcheck in f64; bad row counts are named.
TEST(ExpertsMlpGeluPacked, EqualsTheBatchedOpOverTheZeroPaddedRowsWithGradients) {
  const int64_t experts = 4, d = 4, hidden = 8, most = 3;
  const std::vector<int64_t> rows{2, 0, 3, 1};  // 6 rows in all
  const int64_t n = 6;
  Tensor x = leaf(distinct_values(n * d), {n, d});
  Tensor w1 = leaf(distinct_values(experts * d * hidden, 0.01), {experts, d, hidden});
  Tensor b1 = leaf(distinct_values(experts * hidden, 0.05), {experts, 1, hidden});
  Tensor w2 = leaf(distinct_values(experts * hidden * d, 0.01), {experts, hidden, d});
  Tensor b2 = leaf(distinct_values(experts * d, 0.1), {experts, 1, d});
  std::vector<Tensor> params{w1, b1, w2, b2};
  std::vector<double> g = distinct_values(n * d, 0.7);
  Tensor packed = experts_mlp_gelu_packed(x, rows, w1, b1, w2, b2);
  ASSERT_EQ(packed.shape(), Shape({n, d}));
  sum(mul(packed, Tensor::from_vector<double>(g, {n, d}))).backward();
  std::vector<std::vector<double>> packed_grads;
  for (Tensor& t : params) {
    packed_grads.push_back(t.grad().to_vector<double>());
    t.zero_grad();
  }
  // The same rows padded: expert e's rows at (e, 0 .. rows[e] - 1).
  std::vector<double> xs = x.to_vector<double>(), padded_x(experts * most * d, 0.0), padded_g(experts * most * d, 0.0);
  std::vector<int64_t> padded_row;  // the padded row of each packed row
  for (int64_t e = 0; e < experts; ++e)
    for (int64_t r = 0; r < rows[e]; ++r) padded_row.push_back(e * most + r);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      padded_x[padded_row[i] * d + j] = xs[i * d + j];
      padded_g[padded_row[i] * d + j] = g[i * d + j];
    }
  Tensor px = leaf(padded_x, {experts, most, d});
  Tensor batched = experts_mlp_gelu(px, w1, b1, w2, b2);
  sum(mul(batched, Tensor::from_vector<double>(padded_g, {experts, most, d}))).backward();
  std::vector<double> want_y = batched.to_vector<double>(), want_dx = px.grad().to_vector<double>(), y_rows, dx_rows;
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) {
      y_rows.push_back(want_y[padded_row[i] * d + j]);
      dx_rows.push_back(want_dx[padded_row[i] * d + j]);
    }
  expect_values(packed, y_rows, 1e-13);
  expect_values(x.grad(), dx_rows, 1e-13);
  for (size_t i = 0; i < params.size(); ++i) expect_values(params[i].grad(), packed_grads[i], 1e-13);
  for (double v : std::vector<double>(packed_grads[0].begin() + d * hidden, packed_grads[0].begin() + 2 * d * hidden))
    EXPECT_EQ(v, 0.0);  // expert 1 has no rows
  x.zero_grad();
  expect_gradcheck(
      [&](const std::vector<Tensor>& in) { return experts_mlp_gelu_packed(in[0], rows, in[1], in[2], in[3], in[4]); },
      {x, w1, b1, w2, b2});
  std::string e = error_of([&] { experts_mlp_gelu_packed(x, {2, 0, 3, 2}, w1, b1, w2, b2); });
  EXPECT_NE(e.find("the experts' rows sum to 7 but x has 6 rows"), std::string::npos) << e;
  e = error_of([&] { experts_mlp_gelu_packed(x, {3, 3}, w1, b1, w2, b2); });
  EXPECT_NE(e.find("expected the rows of 4 experts, got 2"), std::string::npos) << e;
  e = error_of([&] { experts_mlp_gelu_packed(x, {7, -1, 0, 0}, w1, b1, w2, b2); });
  EXPECT_NE(e.find("expert 1 has -1 rows"), std::string::npos) << e;
}

// The MoE gate's f32 logits from bf16 operands: the values of the f32 linear of the same (exact) values, an
// output gradient rounded to bf16 for dx (bf16) and dw (f32, Note [f32 weight gradients]).
TEST(LinearF32Out, EqualsTheF32LinearOfTheHalfValuesWithGradients) {
  auto bf16_leaf = [](const std::vector<double>& v, const Shape& s) {
    Tensor t = Tensor::from_vector<double>(v, s, DType::kBF16);
    t.set_requires_grad(true);
    return t;
  };
  Tensor x = bf16_leaf(distinct_values(5 * 6, 0.37), {5, 6}), w = bf16_leaf(distinct_values(3 * 6, 0.21), {3, 6});
  Tensor y = linear_f32_out(x, w);  // (5, 3)
  ASSERT_EQ(y.dtype(), DType::kF32);
  Tensor xf = x.detach().to(DType::kF32), wf = w.detach().to(DType::kF32);
  EXPECT_EQ(y.to_vector<float>(), linear(xf, wf).to_vector<float>());
  Tensor dy = Tensor::from_vector<double>(distinct_values(5 * 3, 0.013), {5, 3}, DType::kF32);
  y.backward(dy);
  Tensor dyh = dy.to(DType::kBF16).to(DType::kF32);  // the gradient the backward's GEMMs take
  ASSERT_EQ(x.grad().dtype(), DType::kF32);           // a leaf's main gradient
  ASSERT_EQ(w.grad().dtype(), DType::kF32);
  expect_values(x.grad(), matmul(dyh, wf).to(DType::kBF16).to_vector<double>(), 0);  // rounded once, to x's dtype
  expect_values(w.grad(), matmul(dyh.transpose(0, 1), xf).to_vector<double>(), 1e-6);
  EXPECT_THROW(linear_f32_out(xf, wf), Error);
}

// Note [Fused LM head loss]: linear_cross_entropy is cross_entropy(linear(x, w)) with the logits' gradient
// made in the forward pass: the same loss and gradients (f64), ignored rows included, and an f64 gradcheck.
TEST(LinearCrossEntropy, EqualsCrossEntropyOfTheLinearWithGradients) {
  Tensor x = leaf(distinct_values(5 * 4, 0.31), {5, 4}), w = leaf(distinct_values(7 * 4, 0.17), {7, 4});
  Tensor targets = targets_of({6, -100, 0, 3, 3});
  Tensor fused = linear_cross_entropy(x, w, targets);
  EXPECT_EQ(fused.shape(), Shape({}));
  fused.backward();
  std::vector<double> gx = x.grad().to_vector<double>(), gw = w.grad().to_vector<double>();
  x.zero_grad();
  w.zero_grad();
  Tensor parts = cross_entropy(linear(x, w), targets);
  parts.backward();
  EXPECT_NEAR(fused.item(), parts.item(), 1e-14);
  expect_values(x.grad(), gx, 1e-14);
  expect_values(w.grad(), gw, 1e-14);
  expect_gradcheck([targets](const std::vector<Tensor>& in) { return linear_cross_entropy(in[0], in[1], targets); },
                   {x, w});
  // Every row ignored: loss 0 and no gradient, not 0/0.
  x.zero_grad();
  Tensor none = linear_cross_entropy(x, w, targets_of({-100, -100, -100, -100, -100}));
  none.backward();
  EXPECT_EQ(none.item(), 0.0);
  expect_values(x.grad(), std::vector<double>(20, 0.0), 0);
}

// In bf16 the loss is the unfused one's (the same rounded logits, the same f32 loss kernel); the gradients
// round P = softmax - onehot and diag(g) X where the unfused backward rounds diag(g) P, so both are held to
// the f64 gradients of the same bf16 values, within 1% of the largest. The weight's gradient is f32
// (Note [f32 weight gradients]).
TEST(LinearCrossEntropy, HalfOperandsMatchTheF64GradientsToBf16Precision) {
  auto bf16_leaf = [](const std::vector<double>& v, const Shape& s) {
    Tensor t = Tensor::from_vector<double>(v, s, DType::kBF16);
    t.set_requires_grad(true);
    return t;
  };
  Tensor x = bf16_leaf(distinct_values(8 * 16, 0.37), {8, 16}), w = bf16_leaf(distinct_values(33 * 16, 0.21), {33, 16});
  Tensor targets = Tensor::from_vector<int32_t>({1, 32, 0, 7, -100, 5, 5, 20}, {8});
  Tensor x64 = leaf(x.to_vector<double>(), {8, 16}), w64 = leaf(w.to_vector<double>(), {33, 16});
  cross_entropy(linear(x64, w64), targets).backward();
  Tensor fused = linear_cross_entropy(x, w, targets);
  ASSERT_EQ(fused.dtype(), DType::kF32);
  fused.backward();
  ASSERT_EQ(w.grad().dtype(), DType::kF32);
  std::vector<double> gx = x.grad().to_vector<double>(), gw = w.grad().to_vector<double>();
  x.zero_grad();
  w.zero_grad();
  Tensor parts = cross_entropy(linear(x, w), targets);
  parts.backward();
  EXPECT_EQ(fused.item(), parts.item());
  auto expect_near_f64 = [](const std::vector<double>& got, const Tensor& want, const char* what) {
    std::vector<double> r = want.to_vector<double>();
    double largest = 0;
    for (double v : r) largest = std::max(largest, std::abs(v));
    for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], r[i], 1e-2 * largest) << what << " " << i;
  };
  expect_near_f64(gx, x64.grad(), "fused dx");
  expect_near_f64(gw, w64.grad(), "fused dw");
  expect_near_f64(x.grad().to_vector<double>(), x64.grad(), "unfused dx");
  expect_near_f64(w.grad().to_vector<double>(), w64.grad(), "unfused dw");
}

TEST(LinearCrossEntropy, ErrorsNameShapesDtypesAndTargets) {
  Tensor x = f64(distinct_values(6), {2, 3}), w = f64(distinct_values(12), {4, 3});
  EXPECT_NE(error_of([&] { linear_cross_entropy(x, f64(distinct_values(8), {4, 2}), targets_of({0, 1})); }).find("differ in d"),
            std::string::npos);
  EXPECT_NE(error_of([&] { linear_cross_entropy(x, w, targets_of({0, 1, 2})); }).find("do not match x"), std::string::npos);
  EXPECT_NE(error_of([&] { linear_cross_entropy(x, w.to(DType::kF32), targets_of({0, 1})); }).find("linear_cross_entropy"),
            std::string::npos);
  std::string e = error_of([&] { linear_cross_entropy(x, w, targets_of({0, 4})); });
  EXPECT_NE(e.find("target 4"), std::string::npos) << e;
}
