// Module tests: registration and dotted names, parameter kinds, weight tying, state_dict round
// trip and load errors, train/eval, to(dtype), zero_grad, counting, and GPT-2 initialisation.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/graph/grad_mode.h"
#include "mt/nn/attention.h"
#include "mt/nn/embedding.h"
#include "mt/nn/init.h"
#include "mt/nn/layer_norm.h"
#include "mt/nn/mlp.h"
#include "mt/ops/ops.h"

using namespace mt;

namespace {

struct Block : Module {
  Block(int64_t d, Generator& gen) {
    ln = register_module("ln", std::make_shared<LayerNorm>(d));
    attn = register_module("attn", std::make_shared<CausalSelfAttention>(d, 2, 0.0, gen));
    mlp = register_module("mlp", std::make_shared<MLP>(d, 4 * d, 0.0, gen));
  }
  std::shared_ptr<LayerNorm> ln;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<MLP> mlp;
};

struct TinyNet : Module {
  TinyNet(int64_t vocab, int64_t d, int n_blocks, Generator& gen) {
    wte = register_module("wte", std::make_shared<Embedding>(vocab, d));
    blocks = register_module("blocks", std::make_shared<ModuleList>());
    for (int i = 0; i < n_blocks; ++i) blocks->push_back(std::make_shared<Block>(d, gen));
    head = register_module("head", std::make_shared<Linear>(d, vocab, Bias::kNo));
  }
  Tensor forward(const Tensor& ids) const {
    Tensor h = wte->forward(ids);
    for (size_t i = 0; i < blocks->size(); ++i) {
      Block& b = blocks->at<Block>(i);
      h = add(h, b.attn->forward(b.ln->forward(h)));
      h = add(h, b.mlp->forward(h));
    }
    return head->forward(h);
  }
  std::shared_ptr<Embedding> wte;
  std::shared_ptr<ModuleList> blocks;
  std::shared_ptr<Linear> head;
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

Tensor ids_2x3() { return Tensor::from_vector<int64_t>({1, 4, 2, 0, 3, 3}, {2, 3}); }

}  // namespace

TEST(Module, DottedNamesInRegistrationOrder) {
  Generator gen(1);
  TinyNet net(5, 4, 4, gen);
  std::vector<std::string> names;
  for (const auto& p : net.named_parameters()) names.push_back(p.name);
  ASSERT_EQ(names.size(), 1u + 4 * 10 + 1);
  EXPECT_EQ(names[0], "wte.weight");
  EXPECT_EQ(names[1], "blocks.0.ln.weight");
  EXPECT_EQ(names[2], "blocks.0.ln.bias");
  EXPECT_EQ(names[3], "blocks.0.attn.qkv.weight");
  EXPECT_EQ(names[6], "blocks.0.attn.proj.bias");
  EXPECT_EQ(names[7], "blocks.0.mlp.fc.weight");
  EXPECT_EQ(names[1 + 3 * 10 + 2], "blocks.3.attn.qkv.weight");
  EXPECT_EQ(names.back(), "head.weight");
  EXPECT_EQ(net.named_parameters()[3].tensor.shape(), (Shape{12, 4}));
  EXPECT_TRUE(net.blocks->at<Block>(3).attn->qkv().weight().is_same(net.named_parameters()[33].tensor));
  EXPECT_EQ(net.parameters().size(), names.size());
  std::vector<std::string> modules;
  for (const auto& [name, m] : net.named_modules()) modules.push_back(name);
  ASSERT_GE(modules.size(), 5u);
  EXPECT_EQ(modules[0], "");
  EXPECT_EQ(modules[1], "wte");
  EXPECT_EQ(modules[2], "blocks");
  EXPECT_EQ(modules[3], "blocks.0");
  EXPECT_EQ(modules[4], "blocks.0.ln");
  EXPECT_EQ(modules.back(), "head");
}

TEST(Module, ParameterKindsDriveDecayGroups) {
  Generator gen(1);
  TinyNet net(5, 4, 1, gen);
  std::map<std::string, ParamKind> kinds;
  for (const auto& p : net.named_parameters()) kinds[p.name] = p.kind;
  EXPECT_EQ(kinds.at("wte.weight"), ParamKind::kEmbedding);
  EXPECT_EQ(kinds.at("blocks.0.ln.weight"), ParamKind::kNorm);
  EXPECT_EQ(kinds.at("blocks.0.ln.bias"), ParamKind::kNorm);
  EXPECT_EQ(kinds.at("blocks.0.attn.qkv.weight"), ParamKind::kWeight);
  EXPECT_EQ(kinds.at("blocks.0.attn.qkv.bias"), ParamKind::kBias);
  EXPECT_EQ(kinds.at("head.weight"), ParamKind::kWeight);
}

TEST(Module, TiedParameterIsListedOnceButSavedUnderEachName) {
  struct Tied : Module {
    Tied() {
      emb = register_module("wte", std::make_shared<Embedding>(6, 3));
      register_parameter("lm_head", emb->weight());
    }
    std::shared_ptr<Embedding> emb;
  } tied;
  EXPECT_EQ(tied.named_parameters().size(), 1u);
  EXPECT_EQ(tied.num_parameters(), 18);
  StateDict s = tied.state_dict();
  EXPECT_EQ(s.size(), 2u);
  EXPECT_TRUE(s.count("lm_head") && s.count("wte.weight"));
}

TEST(Module, CountsAndZeroGrad) {
  Linear lin(3, 4);
  EXPECT_EQ(lin.num_parameters(), 3 * 4 + 4);
  EXPECT_EQ(Linear(3, 4, Bias::kNo).num_parameters(), 12);
  Tensor x = ones({2, 3});
  sum(lin.forward(x)).backward();
  EXPECT_TRUE(lin.weight().grad().defined());
  EXPECT_EQ(lin.bias().grad().to_vector<float>(), (std::vector<float>{2, 2, 2, 2}));
  lin.zero_grad();
  EXPECT_FALSE(lin.weight().grad().defined());
  EXPECT_FALSE(lin.bias().grad().defined());
}

TEST(Module, LinearComputesXWTransposePlusBias) {
  Linear lin(2, 3);
  {
    NoGradGuard ng;
    lin.weight().copy_(Tensor::from_vector<float>({1, 2, 3, 4, 5, 6}, {3, 2}));
    lin.bias().copy_(Tensor::from_vector<float>({0.5f, -1, 0}, {3}));
  }
  Tensor y = lin.forward(Tensor::from_vector<float>({1, -1}, {1, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{-0.5f, -2.0f, -1.0f}));
}

TEST(Module, StateDictRoundTripReproducesOutputs) {
  Generator g1(1), g2(2);
  TinyNet a(5, 4, 2, g1), b(5, 4, 2, g2);
  init_gpt2(a, 0.02, g1);
  init_gpt2(b, 0.02, g2);
  Tensor ids = ids_2x3();
  a.eval();
  b.eval();
  EXPECT_NE(a.forward(ids).to_vector<float>(), b.forward(ids).to_vector<float>());
  b.load_state_dict(a.state_dict());
  for (const auto& [k, v] : a.state_dict()) EXPECT_EQ(v.to_vector<float>(), b.state_dict().at(k).to_vector<float>()) << k;
  EXPECT_EQ(a.forward(ids).to_vector<float>(), b.forward(ids).to_vector<float>());
  // Loading copies values: b's tensors are still its own.
  EXPECT_FALSE(a.wte->weight().storage() == b.wte->weight().storage());
}

TEST(Module, LoadStateDictErrorsNameTheKey) {
  Generator gen(1);
  TinyNet net(5, 4, 1, gen);
  StateDict good = net.state_dict();

  StateDict missing = good;
  missing.erase("blocks.0.mlp.fc.bias");
  EXPECT_NE(error_of([&] { net.load_state_dict(missing); }).find("missing key 'blocks.0.mlp.fc.bias'"),
            std::string::npos);
  EXPECT_NO_THROW(net.load_state_dict(missing, Strict::kNo));

  StateDict extra = good;
  extra["blocks.0.mlp.fc.scale"] = ones({16});
  EXPECT_NE(error_of([&] { net.load_state_dict(extra); }).find("unexpected key 'blocks.0.mlp.fc.scale'"),
            std::string::npos);
  EXPECT_NO_THROW(net.load_state_dict(extra, Strict::kNo));

  StateDict shape = good;
  shape["blocks.0.attn.qkv.weight"] = zeros({12, 5});
  std::string m = error_of([&] { net.load_state_dict(shape, Strict::kNo); });
  EXPECT_NE(m.find("'blocks.0.attn.qkv.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("[12, 5]"), std::string::npos) << m;
  EXPECT_NE(m.find("[12, 4]"), std::string::npos) << m;

  StateDict dtype = good;
  dtype["head.weight"] = zeros({5, 4}, {DType::kF64});
  m = error_of([&] { net.load_state_dict(dtype); });
  EXPECT_NE(m.find("'head.weight'"), std::string::npos) << m;
  EXPECT_NE(m.find("f64"), std::string::npos) << m;
}

TEST(Module, TrainEvalIsRecursive) {
  Generator gen(3);
  TinyNet net(5, 4, 2, gen);
  EXPECT_TRUE(net.is_training());
  net.eval();
  for (auto& [name, m] : net.named_modules()) EXPECT_FALSE(m->is_training()) << name;
  net.blocks->push_back(std::make_shared<Block>(4, gen));  // joins in the parent's mode
  EXPECT_FALSE(net.blocks->at(2).is_training());
  net.train();
  for (auto& [name, m] : net.named_modules()) EXPECT_TRUE(m->is_training()) << name;
}

TEST(Module, DropoutActsOnlyInTraining) {
  Generator gen(5);
  Dropout drop(0.5, gen);
  Tensor x = ones({1000});
  std::vector<float> y = drop.forward(x).to_vector<float>();
  int zeros_seen = 0;
  for (float v : y) {
    EXPECT_TRUE(v == 0.0f || v == 2.0f) << v;
    zeros_seen += v == 0.0f;
  }
  EXPECT_GT(zeros_seen, 400);
  EXPECT_LT(zeros_seen, 600);
  drop.eval();
  EXPECT_EQ(drop.forward(x).to_vector<float>(), x.to_vector<float>());
}

TEST(Module, ToDtypeKeepsParametersAsLeavesRequiringGrad) {
  Generator gen(4);
  TinyNet net(5, 4, 1, gen);
  init_gpt2(net, 0.5, gen);
  net.register_buffer("position_ids", Tensor::from_vector<int64_t>({0, 1, 2}, {3}));
  std::vector<float> before = net.head->weight().to_vector<float>();
  sum(net.forward(ids_2x3())).backward();
  Tensor held = net.head->weight();  // a Tensor held elsewhere (as an optimizer would)
  net.to(DType::kF64);
  for (const auto& p : net.named_parameters()) {
    EXPECT_EQ(p.tensor.dtype(), DType::kF64) << p.name;
    EXPECT_TRUE(p.tensor.is_leaf()) << p.name;
    EXPECT_TRUE(p.tensor.requires_grad()) << p.name;
    EXPECT_FALSE(p.tensor.grad().defined()) << p.name;
  }
  EXPECT_EQ(held.dtype(), DType::kF64);
  EXPECT_TRUE(held.is_same(net.named_parameters().back().tensor));
  std::vector<double> after = net.head->weight().to_vector<double>();
  for (size_t i = 0; i < before.size(); ++i) EXPECT_EQ(after[i], static_cast<double>(before[i]));
  EXPECT_EQ(net.state_dict().at("position_ids").dtype(), DType::kI64);  // integer buffers keep their dtype
  Tensor out = net.forward(ids_2x3());
  EXPECT_EQ(out.dtype(), DType::kF64);
  sum(out).backward();
  EXPECT_EQ(net.head->weight().grad().dtype(), DType::kF64);
  net.to(Device::cpu(), DType::kBF16);
  EXPECT_EQ(net.wte->weight().dtype(), DType::kBF16);
  EXPECT_TRUE(net.wte->weight().requires_grad());
}

TEST(Module, RegistrationRefusesBadNames) {
  struct M : Module {
    M() { register_parameter("w", zeros({2})); }
    void add(const std::string& name) { register_parameter(name, zeros({2})); }
  } m;
  EXPECT_NE(error_of([&] { m.add("w"); }).find("'w' is already a parameter"), std::string::npos);
  EXPECT_THROW(m.add("a.b"), Error);
  EXPECT_THROW(m.add(""), Error);
  EXPECT_THROW(m.register_parameter("i", zeros({2}, {DType::kI64})), Error);
}

TEST(Module, InitGpt2IsDeterministicWithTheRightStatistics) {
  Generator g1(9), g2(9), g3(10);
  Linear a(64, 128), b(64, 128), c(64, 128);
  init_gpt2(a, 0.02, g1);
  init_gpt2(b, 0.02, g2);
  init_gpt2(c, 0.02, g3);
  std::vector<float> wa = a.weight().to_vector<float>();
  EXPECT_EQ(wa, b.weight().to_vector<float>());
  EXPECT_NE(wa, c.weight().to_vector<float>());
  double s = 0, s2 = 0;
  for (float v : wa) {
    s += v;
    s2 += static_cast<double>(v) * v;
  }
  double mean = s / wa.size(), stddev = std::sqrt(s2 / wa.size() - mean * mean);
  EXPECT_NEAR(mean, 0.0, 0.002);
  EXPECT_NEAR(stddev, 0.02, 0.001);
  EXPECT_EQ(a.bias().to_vector<float>(), std::vector<float>(128, 0.0f));
  LayerNorm ln(3);
  {
    NoGradGuard ng;
    fill_(ln.weight(), 5.0);
  }
  init_gpt2(ln, 0.02, g1);
  EXPECT_EQ(ln.weight().to_vector<float>(), (std::vector<float>{1, 1, 1}));
  EXPECT_EQ(ln.bias().to_vector<float>(), (std::vector<float>{0, 0, 0}));
}
