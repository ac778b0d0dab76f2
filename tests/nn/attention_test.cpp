// CausalSelfAttention tests: f64 gradcheck of the whole module, causality, and KV-cache
// decoding (token by token and in chunks) giving the same outputs as the full forward.
#include <gtest/gtest.h>

#include "mt/autograd/gradcheck.h"
#include "mt/graph/grad_mode.h"
#include "mt/nn/attention.h"
#include "mt/nn/init.h"
#include "mt/nn/mlp.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

void expect_close(const Tensor& a, const Tensor& b, double tol) {
  ASSERT_EQ(a.shape(), b.shape());
  std::vector<double> va = a.to_vector<double>(), vb = b.to_vector<double>();
  for (size_t i = 0; i < va.size(); ++i) EXPECT_NEAR(va[i], vb[i], tol) << "element " << i;
}

}  // namespace

TEST(CausalSelfAttention, GradcheckF64) {
  Generator gen(11);
  CausalSelfAttention attn(4, 2, 0.0, gen);
  init_gpt2(attn, 0.5, gen);
  attn.to(DType::kF64);
  Tensor x = randn({2, 3, 4}, gen, {DType::kF64});
  x.set_requires_grad(true);
  std::vector<Tensor> params = attn.parameters();
  std::vector<Tensor> pristine;
  for (const Tensor& p : params) pristine.push_back(p.detach().clone());
  std::vector<Tensor> inputs{x};
  inputs.insert(inputs.end(), params.begin(), params.end());
  // gradcheck hands in shifted copies of inputs; load them into the module's parameters first
  // (the parameter itself stands for its unshifted value).
  auto fn = [&](const std::vector<Tensor>& in) {
    {
      NoGradGuard ng;
      for (size_t i = 0; i < params.size(); ++i)
        params[i].copy_(in[i + 1].is_same(params[i]) ? pristine[i] : in[i + 1]);
    }
    return attn.forward(in[0]);
  };
  GradcheckResult r = gradcheck(fn, inputs);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(CausalSelfAttention, OutputsDoNotDependOnLaterTokens) {
  Generator gen(12);
  CausalSelfAttention attn(8, 2, 0.0, gen);
  init_gpt2(attn, 0.3, gen);
  Tensor x = randn({1, 5, 8}, gen);
  Tensor y = attn.forward(x);
  Tensor x2 = x.clone();
  {
    NoGradGuard ng;
    x2.narrow(1, 4, 1).copy_(full({}, 7.0));
  }
  Tensor y2 = attn.forward(x2);
  expect_close(y.narrow(1, 0, 4), y2.narrow(1, 0, 4), 1e-6);
  EXPECT_GT(std::abs(sum(y.narrow(1, 4, 1)).item() - sum(y2.narrow(1, 4, 1)).item()), 1e-3);
}

TEST(CausalSelfAttention, KVCacheDecodingMatchesFullForward) {
  Generator gen(13);
  CausalSelfAttention attn(12, 3, 0.1, gen);
  init_gpt2(attn, 0.3, gen);
  attn.eval();
  Tensor x = randn({2, 7, 12}, gen);
  Tensor full_out = attn.forward(x);
  NoGradGuard ng;
  // One token at a time.
  KVCache cache;
  for (int64_t t = 0; t < 7; ++t) {
    Tensor y = attn.forward_cached(x.narrow(1, t, 1), cache);
    EXPECT_EQ(cache.length(), t + 1);
    expect_close(y, full_out.narrow(1, t, 1), 1e-5);
  }
  // A prompt chunk of 3, then chunks of 1 and 3.
  KVCache chunked;
  expect_close(attn.forward_cached(x.narrow(1, 0, 3), chunked), full_out.narrow(1, 0, 3), 1e-5);
  expect_close(attn.forward_cached(x.narrow(1, 3, 1), chunked), full_out.narrow(1, 3, 1), 1e-5);
  expect_close(attn.forward_cached(x.narrow(1, 4, 3), chunked), full_out.narrow(1, 4, 3), 1e-5);
  EXPECT_EQ(chunked.keys.shape(), (Shape{2, 3, 7, 4}));
  chunked.clear();
  EXPECT_EQ(chunked.length(), 0);
  EXPECT_THROW(attn.forward_cached(x.narrow(0, 0, 1), cache), Error);  // batch differs from the cache's
}

TEST(CausalSelfAttention, RefusesBadShapes) {
  Generator gen(14);
  EXPECT_THROW(CausalSelfAttention(10, 3, 0.0, gen), Error);
  CausalSelfAttention attn(6, 2, 0.0, gen);
  EXPECT_THROW(attn.forward(zeros({2, 3, 5})), Error);
  EXPECT_THROW(attn.forward(zeros({3, 6})), Error);
}

TEST(MLP, ComputesProjOfGeluOfFc) {
  Generator gen(15);
  MLP mlp(4, 16, 0.0, gen);
  init_gpt2(mlp, 0.2, gen);
  Tensor x = randn({3, 4}, gen);
  Tensor want = linear(gelu(linear(x, mlp.fc().weight(), mlp.fc().bias())), mlp.proj().weight(), mlp.proj().bias());
  EXPECT_EQ(mlp.forward(x).to_vector<float>(), want.to_vector<float>());
  EXPECT_EQ(mlp.forward(x).shape(), (Shape{3, 4}));
}
