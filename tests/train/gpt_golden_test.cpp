// Golden test: a tiny GPT (2 layers, d 64) against PyTorch (scripts/make_golden_gpt.py wrote
// tests/data/golden_gpt.h5): logits and loss, every parameter gradient and the losses of the first
// five AdamW steps through the fused head loss that training uses (GPT::lm_loss) — in f32 on CPU, and
// in bf16 on CUDA within bf16 tolerances.
#include <gtest/gtest.h>

#include <cmath>

#include "mt/core/device.h"
#include "mt/io/checkpoint.h"
#include "mt/nn/gpt.h"
#include "mt/ops/ops.h"
#include "mt/optim/adamw.h"

using namespace mt;

namespace {

const char* kGolden = MT_TEST_DATA_DIR "/golden_gpt.h5";

Tensor read(const CheckpointReader& r, const std::string& name) {
  const TensorInfo& info = r.info(name);
  Tensor t = Tensor::empty(Shape(info.shape), info.dtype);
  r.read(name, info.dtype, info.shape, t.numel() ? t.data_ptr() : nullptr);
  return t;
}

struct Golden {
  CheckpointReader r{kGolden};
  GPTConfig config() const {
    GPTConfig c;
    c.layers = static_cast<int>(r.read_int("layers"));
    c.d_model = static_cast<int>(r.read_int("d_model"));
    c.heads = static_cast<int>(r.read_int("heads"));
    c.seq_len = static_cast<int>(r.read_int("seq_len"));
    c.vocab_size = static_cast<int>(r.read_int("vocab"));
    return c;
  }
};

// The model with the golden parameters, on `device` in `dtype`.
std::unique_ptr<GPT> golden_model(const Golden& g, Generator& init, Generator& drop, Device device, DType dtype) {
  auto model = std::make_unique<GPT>(g.config(), init, drop);
  StateDict state;
  for (const std::string& name : g.r.names())
    if (name.rfind("param.", 0) == 0) state[name.substr(6)] = read(g.r, name);
  model->load_state_dict(state);
  model->to(device, dtype);
  return model;
}

// max |a - b| / max |b|: the error relative to the tensor's scale.
double relative_error(const Tensor& got, const Tensor& want) {
  std::vector<double> a = got.to_vector<double>(), b = want.to_vector<double>();
  EXPECT_EQ(a.size(), b.size());
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return err / std::max(scale, 1e-30);
}

struct Tolerances {
  double logits, loss, grads, steps;
};

void check_against_golden(Device device, DType dtype, Tolerances tol) {
  Golden g;
  Generator init(0), drop(0);
  auto model = golden_model(g, init, drop, device, dtype);
  Tensor tokens = read(g.r, "input.tokens").to(device);
  Tensor targets = read(g.r, "input.targets").to(device);
  int64_t v = g.config().padded_vocab();

  Tensor logits = model->forward(tokens);  // (B, T, V)
  EXPECT_LT(relative_error(logits, read(g.r, "out.logits")), tol.logits);
  EXPECT_LT(relative_error(cross_entropy(logits.view({-1, v}), targets.view({-1})), read(g.r, "out.loss")), tol.loss);
  // The loss and gradients as training makes them: the fused head loss (Note [Fused LM head loss]).
  Tensor loss = model->lm_loss(tokens, targets);
  double want_loss = read(g.r, "out.loss").item();
  EXPECT_LT(std::fabs(loss.item() - want_loss) / want_loss, tol.loss) << loss.item() << " vs " << want_loss;
  loss.backward();
  for (const NamedParameter& p : model->named_parameters()) {
    Tensor want = read(g.r, "grad." + p.name);
    ASSERT_TRUE(p.tensor.grad().defined()) << p.name;
    EXPECT_LT(relative_error(p.tensor.grad(), want), tol.grads) << p.name;
  }

  // Five AdamW steps from the same start: the loss before each step.
  Generator init2(0), drop2(0);
  auto fresh = golden_model(g, init2, drop2, device, dtype);
  AdamWConfig c;
  c.lr = g.r.read_double("lr");
  c.beta1 = g.r.read_double("beta1");
  c.beta2 = g.r.read_double("beta2");
  c.eps = g.r.read_double("eps");
  c.weight_decay = g.r.read_double("weight_decay");
  AdamW opt(weight_decay_groups(fresh->named_parameters(), EmbeddingDecay::kYes), c);
  std::vector<double> want = read(g.r, "adamw.losses").to_vector<double>();
  for (size_t s = 0; s < want.size(); ++s) {
    Tensor l = fresh->lm_loss(tokens, targets);
    EXPECT_LT(std::fabs(l.item() - want[s]) / want[s], tol.steps) << "step " << s;
    l.backward();
    opt.step();
    opt.zero_grad();
  }
}

}  // namespace

TEST(GptGolden, MatchesPyTorchInF32OnCpu) {
  check_against_golden(Device::cpu(), DType::kF32, {1e-5, 1e-5, 1e-4, 1e-5});
}

TEST(GptGolden, MatchesPyTorchInBf16OnCuda) {
  if (!cuda_available()) GTEST_SKIP() << "no GPU: the CUDA case runs on GPU machines (scripts/gpu-test.sh)";
  check_against_golden(Device::cuda(0), DType::kBF16, {3e-2, 1e-2, 6e-2, 1e-2});
}
