// The recipe's field table (see recipe_schema.h): every section's keys with type, valid range,
// a one-line help and accessors into mt::Recipe built from member pointers. Defaults live in the
// section structs' initialisers (recipe.h).
#include "mt/io/recipe_schema.h"

#include <climits>
#include <cmath>
#include <sstream>

namespace mt {

bool FieldRange::contains(double x) const {
  bool above_lo = lo_open ? x > lo : x >= lo;
  bool below_hi = hi_open ? x < hi : x <= hi;
  return above_lo && below_hi;
}

std::string FieldRange::describe() const {
  std::ostringstream os;
  bool has_hi = hi < static_cast<double>(INT_MAX) && std::isfinite(hi);
  if (!has_hi)
    os << (lo_open ? "> " : ">= ") << lo;
  else
    os << "in " << (lo_open ? "(" : "[") << lo << ", " << hi << (hi_open ? ")" : "]");
  return os.str();
}

namespace {

constexpr double kIntMax = INT_MAX;
constexpr double kInf = HUGE_VAL;

FieldRange at_least(double lo) { return {lo, kIntMax}; }
FieldRange positive() { return {0.0, kInf, true}; }
FieldRange non_negative() { return {0.0, kInf}; }
FieldRange unit_interval_open_hi() { return {0.0, 1.0, false, true}; }
FieldRange unit_interval() { return {0.0, 1.0}; }

// Field builders for the section `kSection` (a `Recipe::*` member pointer): each turns a member
// pointer of the section struct into a RecipeField with captureless accessors.
template <auto kSection>
struct Fields {
  template <auto kMember>
  static RecipeField integer(std::string name, FieldRange range, std::string help, bool required = false) {
    return {std::move(name), FieldType::kInt, std::move(help), range, {}, required,
            [](const Recipe& r) -> FieldValue { return static_cast<std::int64_t>((r.*kSection).*kMember); },
            [](Recipe& r, const FieldValue& v) {
              (r.*kSection).*kMember = static_cast<int>(std::get<std::int64_t>(v));
            }};
  }
  template <auto kMember>
  static RecipeField real(std::string name, FieldRange range, std::string help) {
    return {std::move(name), FieldType::kFloat, std::move(help), range, {}, false,
            [](const Recipe& r) -> FieldValue { return (r.*kSection).*kMember; },
            [](Recipe& r, const FieldValue& v) { (r.*kSection).*kMember = std::get<double>(v); }};
  }
  template <auto kMember>
  static RecipeField boolean(std::string name, std::string help) {
    return {std::move(name), FieldType::kBool, std::move(help), {}, {}, false,
            [](const Recipe& r) -> FieldValue { return (r.*kSection).*kMember; },
            [](Recipe& r, const FieldValue& v) { (r.*kSection).*kMember = std::get<bool>(v); }};
  }
  template <auto kMember>
  static RecipeField text(std::string name, std::string help, bool required = false) {
    return {std::move(name), FieldType::kString, std::move(help), {}, {}, required,
            [](const Recipe& r) -> FieldValue { return (r.*kSection).*kMember; },
            [](Recipe& r, const FieldValue& v) { (r.*kSection).*kMember = std::get<std::string>(v); }};
  }
  // `choices` spell the enum's values in declaration order (index i <-> static_cast<E>(i)).
  template <auto kMember>
  static RecipeField choice(std::string name, std::vector<std::string> choices, std::string help) {
    return {std::move(name), FieldType::kEnum, std::move(help), {}, std::move(choices), false,
            [](const Recipe& r) -> FieldValue { return static_cast<std::int64_t>((r.*kSection).*kMember); },
            [](Recipe& r, const FieldValue& v) {
              using E = std::remove_reference_t<decltype((r.*kSection).*kMember)>;
              (r.*kSection).*kMember = static_cast<E>(std::get<std::int64_t>(v));
            }};
  }
};

// moe.experts: a count (all MoE layers alike) or a list (Pyramid-MoE), see MoeSection.
RecipeField experts_field() {
  return {"experts", FieldType::kIntOrList,
          "experts per MoE layer (0 = dense), or a list: one count per MoE layer, shallow to deep",
          {0.0, kIntMax}, {}, false,
          [](const Recipe& r) -> FieldValue {
            if (r.moe.experts_per_layer.empty()) return static_cast<std::int64_t>(r.moe.experts);
            return std::vector<std::int64_t>(r.moe.experts_per_layer.begin(), r.moe.experts_per_layer.end());
          },
          [](Recipe& r, const FieldValue& v) {
            if (const auto* n = std::get_if<std::int64_t>(&v)) {
              r.moe.experts = static_cast<int>(*n);
              r.moe.experts_per_layer.clear();
            } else {
              const auto& list = std::get<std::vector<std::int64_t>>(v);
              r.moe.experts = 0;
              r.moe.experts_per_layer.assign(list.begin(), list.end());
            }
          }};
}

// data.train: a glob, or a list of {path: glob, weight: w} (a data mixture), see DataSource.
RecipeField train_sources_field() {
  return {"train", FieldType::kSources,
          "glob of training token shards, or a mixture: a list of {path: glob, weight: w}",
          positive(), {}, true,
          [](const Recipe& r) -> FieldValue { return r.data.train; },
          [](Recipe& r, const FieldValue& v) { r.data.train = std::get<std::vector<DataSource>>(v); }};
}

std::vector<RecipeSection> build_schema() {
  using Model = Fields<&Recipe::model>;
  using Moe = Fields<&Recipe::moe>;
  using Data = Fields<&Recipe::data>;
  using Optim = Fields<&Recipe::optim>;
  using Schedule = Fields<&Recipe::schedule>;
  using Train = Fields<&Recipe::train>;
  using Checkpoint = Fields<&Recipe::checkpoint>;
  using Log = Fields<&Recipe::log>;
  using Dist = Fields<&Recipe::dist>;
  using Distill = Fields<&Recipe::distill>;
  return {
      {"model",
       {Model::integer<&ModelSection::layers>("layers", at_least(1), "transformer blocks"),
        Model::integer<&ModelSection::d_model>("d_model", at_least(1), "hidden size"),
        Model::integer<&ModelSection::heads>("heads", at_least(1), "attention heads; must divide d_model"),
        Model::integer<&ModelSection::seq_len>("seq_len", at_least(1), "context length in tokens"),
        Model::integer<&ModelSection::vocab_size>("vocab_size", at_least(1),
                                                  "tokenizer vocabulary; the model pads it to a multiple of 64"),
        Model::real<&ModelSection::dropout>("dropout", unit_interval_open_hi(), "dropout probability"),
        Model::real<&ModelSection::init_std>("init_std", positive(), "std of the normal weight init"),
        Model::choice<&ModelSection::dtype>("dtype", {"auto", "f32", "bf16"},
                                            "compute dtype; auto = bf16 on CUDA, f32 on CPU"),
        Model::boolean<&ModelSection::tie_embeddings>("tie_embeddings", "LM head shares the token embedding")}},
      {"moe",
       {experts_field(),
        Moe::integer<&MoeSection::every>("every", at_least(1), "block l (1-indexed) is MoE iff l % every == 0"),
        Moe::integer<&MoeSection::top_k>("top_k", at_least(1), "experts per token"),
        Moe::choice<&MoeSection::mlp_type>("mlp_type", {"standard", "residual"},
                                           "residual = dense MLP + top-1 expert, mixed per token"),
        Moe::real<&MoeSection::capacity_factor>("capacity_factor", positive(), "training capacity factor"),
        Moe::real<&MoeSection::eval_capacity_factor>("eval_capacity_factor", positive(), "eval capacity factor"),
        Moe::integer<&MoeSection::min_capacity>("min_capacity", at_least(0), "lower bound of expert capacity"),
        Moe::boolean<&MoeSection::drop_tokens>("drop_tokens", "drop tokens over capacity (false = dropless)"),
        Moe::choice<&MoeSection::noisy_gate>("noisy_gate", {"none", "jitter", "rsample"}, "gate noise in training"),
        Moe::boolean<&MoeSection::random_token_selection>(
            "random_token_selection", "top-1: keep random tokens, not the earliest, when over capacity (DeepSpeed's use_rts)"),
        Moe::boolean<&MoeSection::second_expert_sampling>(
            "second_expert_sampling",
            "top-2: second expert = argmax of the other logits + Gumbel noise, in training and eval (DeepSpeed's "
            "top2_2nd_expert_sampling)"),
        Moe::real<&MoeSection::aux_loss_coef>("aux_loss_coef", non_negative(), "load-balancing loss weight"),
        Moe::real<&MoeSection::z_loss_coef>("z_loss_coef", non_negative(), "router z-loss weight")}},
      {"data",
       {train_sources_field(),
        Data::text<&DataSection::val>("val", "glob of validation token shards"),
        Data::text<&DataSection::tokenizer>("tokenizer", "tokenizer path; empty = none")}},
      {"optim",
       {Optim::choice<&OptimSection::name>("name", {"adamw", "sgd"}, "optimizer"),
        Optim::real<&OptimSection::lr>("lr", positive(), "peak learning rate"),
        Optim::real<&OptimSection::beta1>("beta1", unit_interval_open_hi(), "AdamW beta1"),
        Optim::real<&OptimSection::beta2>("beta2", unit_interval_open_hi(), "AdamW beta2"),
        Optim::real<&OptimSection::eps>("eps", positive(), "AdamW epsilon"),
        Optim::real<&OptimSection::weight_decay>("weight_decay", non_negative(), "decoupled weight decay"),
        Optim::real<&OptimSection::momentum>("momentum", unit_interval_open_hi(), "SGD momentum"),
        Optim::real<&OptimSection::grad_clip>("grad_clip", non_negative(), "global gradient-norm clip; 0 = off")}},
      {"schedule",
       {Schedule::choice<&ScheduleSection::kind>("kind", {"constant", "cosine", "linear"}, "decay after warmup"),
        Schedule::integer<&ScheduleSection::warmup_steps>("warmup_steps", at_least(0), "linear warmup steps"),
        Schedule::real<&ScheduleSection::min_lr_ratio>("min_lr_ratio", unit_interval(),
                                                       "final learning rate as a fraction of optim.lr")}},
      {"train",
       {Train::integer<&TrainSection::steps>("steps", at_least(1), "optimizer steps", true),
        Train::integer<&TrainSection::micro_batch>("micro_batch", at_least(0), "sequences per rank per forward; 0 = derive"),
        Train::integer<&TrainSection::grad_accum>("grad_accum", at_least(0), "micro-batches per step; 0 = derive"),
        Train::integer<&TrainSection::global_batch>("global_batch", at_least(0),
                                                    "sequences per step, all ranks; 0 = derive"),
        Train::integer<&TrainSection::seed>("seed", at_least(0), "random seed"),
        Train::choice<&TrainSection::device>("device", {"auto", "cpu", "cuda"}, "auto = cuda when available"),
        Train::text<&TrainSection::run_dir>("run_dir", "run folder: recipe, metrics, checkpoints, samples", true),
        Train::integer<&TrainSection::eval_every>("eval_every", at_least(0), "steps between evals; 0 = none"),
        Train::integer<&TrainSection::eval_steps>("eval_steps", at_least(1), "batches per eval"),
        Train::integer<&TrainSection::sample_every>("sample_every", at_least(0), "steps between samples; 0 = none"),
        Train::integer<&TrainSection::sample_tokens>("sample_tokens", at_least(1), "tokens per sample"),
        Train::text<&TrainSection::sample_prompt>("sample_prompt", "prompt of samples"),
        Train::choice<&TrainSection::recompute>("recompute", {"none", "attention", "block"},
                                                "activations recomputed in the backward: none, the attention half "
                                                "of each block, or whole blocks (memory for time)"),
        Train::integer<&TrainSection::max_bad_steps>("max_bad_steps", at_least(1),
                                                     "non-finite loss or gradient steps in a row (each skipped) that stop the run"),
        Train::boolean<&TrainSection::cuda_graph>(
            "cuda_graph", "on one GPU, replay the step as a CUDA graph after warm-up (dropless MoE, several ranks and "
                          "profiled steps run eagerly)")}},
      {"checkpoint",
       {Checkpoint::integer<&CheckpointSection::every>("every", at_least(0), "steps between checkpoints; 0 = none"),
        Checkpoint::integer<&CheckpointSection::keep>("keep", at_least(1), "checkpoints kept"),
        Checkpoint::text<&CheckpointSection::resume>("resume", "auto | never | <checkpoint path>"),
        Checkpoint::boolean<&CheckpointSection::fallback>(
            "fallback", "resume: auto with `latest` missing or damaged: newest valid checkpoint (true) or refuse"),
        Checkpoint::choice<&CheckpointSection::format>(
            "format", {"single", "sharded"},
            "single: one file written by rank 0; sharded: a folder, every rank writing its own part in parallel")}},
      {"log",
       {Log::integer<&LogSection::every>("every", at_least(1), "steps between log lines"),
        Log::choice<&LogSection::progress>("progress", {"auto", "line", "plain"}, "progress display")}},
      {"dist",
       {Dist::integer<&DistSection::dp>("dp", at_least(0), "data-parallel size; 0 = all ranks"),
        Dist::integer<&DistSection::ep>("ep", at_least(1),
                                        "largest expert-parallel size: E experts split over min(E, ep) ranks"),
        Dist::integer<&DistSection::node_size>("node_size", at_least(0),
                                               "ranks per node: an expert group spanning nodes exchanges tokens "
                                               "within, then across nodes; 0 = ranks per host"),
        Dist::integer<&DistSection::zero>("zero", FieldRange{0.0, 2.0},
                                          "ZeRO stage: 0 = full optimizer state per rank, 1 = partitioned, "
                                          "2 = gradients partitioned too"),
        Dist::real<&DistSection::timeout>("timeout", non_negative(),
                                          "seconds without progress that end the job (stalled rank); 0 = never"),
        Dist::boolean<&DistSection::overlap>("overlap",
                                             "start the data-parallel gradient all-reduce during the backward, "
                                             "bucket by bucket (false: after it)"),
        Dist::real<&DistSection::bucket_mb>("bucket_mb", positive(),
                                            "MiB of gradients per data-parallel all-reduce bucket"),
        Dist::choice<&DistSection::grad_reduce_dtype>(
            "grad_reduce_dtype", {"f32", "bf16"},
            "dtype of the data-parallel sum of bf16 parameters' gradients (kept in f32); bf16 = half the bytes")}},
      {"distill",
       {Distill::text<&DistillSection::teacher>("teacher", "teacher checkpoint; empty = no distillation"),
        Distill::real<&DistillSection::kd_coef>("kd_coef", non_negative(), "KD loss weight"),
        Distill::real<&DistillSection::temperature>("temperature", positive(), "KD softmax temperature"),
        Distill::real<&DistillSection::stop_at>("stop_at", non_negative(),
                                                "KD stops here: fraction of steps if <= 1, else a step; 0 = KD all run")}},
  };
}

}  // namespace

const std::vector<RecipeSection>& recipe_schema() {
  static const std::vector<RecipeSection> schema = build_schema();
  return schema;
}

const RecipeField* find_recipe_field(const std::string& section, const std::string& key) {
  for (const auto& s : recipe_schema()) {
    if (s.name != section) continue;
    for (const auto& f : s.fields)
      if (f.name == key) return &f;
  }
  return nullptr;
}

}  // namespace mt
