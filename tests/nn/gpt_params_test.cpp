// Parameter counts: the analytic counts `estimate` prints equal the built model's for small
// configs (dense, MoE, Pyramid, residual), and the paper's configs give the paper's totals.
#include <gtest/gtest.h>

#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/gpt_from_recipe.h"

using namespace mt;

namespace {

GPTConfig small(std::vector<int> experts, bool residual, int top_k = 1) {
  GPTConfig c;
  c.layers = 4;
  c.d_model = 32;
  c.heads = 2;
  c.seq_len = 16;
  c.vocab_size = 100;
  c.experts_per_block = std::move(experts);
  c.moe.mlp_type = residual ? MlpType::kResidual : MlpType::kStandard;
  c.moe.top_k = top_k;
  return c;
}

double billions(const std::string& recipe) {
  Recipe r = load_recipe(std::string(MT_SOURCE_DIR) + "/recipes/" + recipe);
  return count_parameters(gpt_config_from_recipe(r)).total / 1e9;
}

}  // namespace

TEST(GptParams, AnalyticCountMatchesTheBuiltModel) {
  for (const GPTConfig& c : {small({}, false), small({0, 4, 0, 4}, false), small({0, 2, 0, 4}, true),
                             small({0, 4, 0, 8}, false, 2)}) {
    Generator init(1), drop(2);
    GPT model(c, init, drop);
    EXPECT_EQ(count_parameters(c).total, model.num_parameters());
  }
}

TEST(GptParams, ActiveCountsOnlyTopKExperts) {
  GPTConfig dense = small({}, false), moe = small({0, 4, 0, 4}, false);
  ParamCounts d = count_parameters(dense), m = count_parameters(moe);
  int64_t gates = 2 * 32 * 4;
  EXPECT_EQ(m.active, d.active + gates);  // top-1: one expert's MLP replaces the dense MLP
  EXPECT_EQ(m.total - d.total, gates + 2 * 3 * (8 * 32 * 32 + 5 * 32));
}

TEST(GptParams, PaperConfigsGiveThePaperTotals) {
  EXPECT_NEAR(billions("dense-350m.yaml"), 0.35, 0.02);
  EXPECT_NEAR(billions("dense-1.3b.yaml"), 1.3, 0.07);
  EXPECT_NEAR(billions("moe-350m.yaml"), 13.0, 0.3);     // 350M+MoE-128: 13B
  EXPECT_NEAR(billions("pr-moe-350m.yaml"), 4.0, 0.2);   // 350M+PR-MoE-32/64: 4B
  EXPECT_NEAR(billions("moe-1.3b.yaml"), 52.0, 1.0);     // 1.3B+MoE-128: 52B
  EXPECT_NEAR(billions("pr-moe-1.3b.yaml"), 31.0, 1.0);  // 1.3B+PR-MoE-64/128: 31B
  EXPECT_NEAR(billions("pr-mos-350m.yaml"), 3.5, 0.2);   // 350M MoS student: 3.5B
  EXPECT_NEAR(billions("pr-mos-1.3b.yaml"), 27.0, 1.0);  // 1.3B MoS student: 27B
}
