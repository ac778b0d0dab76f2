// The training loop. Note [Determinism]: CPU kernels are deterministic for a fixed thread count,
// the loader's order comes from the seed, dropout draws from a Generator saved in checkpoints,
// so a resumed run repeats the original run's losses exactly.
#include "mt/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "mt/autograd/grad_mode.h"
#include "mt/core/device_copy.h"
#include "mt/data/token_loader.h"
#include "mt/data/tokenizer.h"
#include "mt/io/checkpoint.h"
#include "mt/io/checkpoint_dir.h"
#include "mt/nn/gpt.h"
#include "mt/ops/ops.h"
#include "mt/optim/adamw.h"
#include "mt/optim/lr_schedule.h"
#include "mt/optim/sgd.h"
#include "mt/train/distillation.h"
#include "mt/train/expert_sharding.h"
#include "mt/train/metrics_log.h"
#include "mt/train/preflight.h"
#include "mt/train/progress.h"
#include "mt/train/sampling.h"
#include "mt/train/stop_signal.h"
#include "mt/train/train_checkpoint.h"
#include "mt/train/validation.h"
#include "mt/train/watchdog.h"
#include "mt/train/zero_partition.h"

namespace mt {

namespace fs = std::filesystem;

Device resolve_device(const Recipe& recipe, const Communicator& world) {
  switch (recipe.train.device) {
    case TrainSection::Device::kCpu: return Device::cpu();
    case TrainSection::Device::kCuda:
      MT_CHECK(cuda_available(), "train.device is cuda but no GPU is available");
      return Device::cuda(world.local_rank() % cuda_device_count());
    case TrainSection::Device::kAuto:
      return cuda_available() ? Device::cuda(world.local_rank() % cuda_device_count()) : Device::cpu();
  }
  return Device::cpu();
}

DType resolve_dtype(const Recipe& recipe, Device device) {
  switch (recipe.model.dtype) {
    case ModelSection::DType::kF32: return DType::F32;
    case ModelSection::DType::kBf16: return DType::BF16;
    case ModelSection::DType::kAuto: return device.is_cuda() ? DType::BF16 : DType::F32;
  }
  return DType::F32;
}

namespace {

std::unique_ptr<Optimizer> make_optimizer(const Recipe& r, const std::vector<NamedParameter>& params) {
  auto groups = weight_decay_groups(params, EmbeddingDecay::kYes);
  if (r.optim.name == OptimSection::Name::kSgd) {
    SgdConfig c;
    c.lr = r.optim.lr;
    c.momentum = r.optim.momentum;
    c.weight_decay = r.optim.weight_decay;
    return std::make_unique<Sgd>(std::move(groups), c);
  }
  AdamWConfig c;
  c.lr = r.optim.lr;
  c.beta1 = r.optim.beta1;
  c.beta2 = r.optim.beta2;
  c.eps = r.optim.eps;
  c.weight_decay = r.optim.weight_decay;
  return std::make_unique<AdamW>(std::move(groups), c);
}

LrScheduleConfig schedule_config(const Recipe& r) {
  LrScheduleConfig c;
  c.lr = r.optim.lr;
  c.warmup_steps = r.schedule.warmup_steps;
  c.total_steps = r.train.steps;
  c.min_lr_ratio = r.schedule.min_lr_ratio;
  c.decay = r.schedule.kind == ScheduleSection::Kind::kConstant ? LrDecay::kConstant
            : r.schedule.kind == ScheduleSection::Kind::kLinear ? LrDecay::kLinear
                                                                 : LrDecay::kCosine;
  return c;
}

double evaluate(GPT& model, const Recipe& r, const Communicator& world, Device device) {
  TokenLoaderOptions o;
  o.shards = {r.data.val};
  o.batch_size = r.train.micro_batch;
  o.seq_len = r.model.seq_len;
  o.dp_rank = world.rank();
  o.dp_size = world.size();
  o.vocab_size = r.model.vocab_size;
  o.order = LoaderOrder::kSequential;
  TokenLoader val(o);
  int64_t steps = std::min<int64_t>(r.train.eval_steps, std::max<int64_t>(1, val.steps_per_epoch()));
  return world.all_reduce(validation_loss(model, val, steps, device), ReduceKind::kAvg);
}

std::string sample_text(GPT& model, const Recipe& r, const Tokenizer& tok, int64_t step) {
  SamplingOptions so;
  so.max_tokens = r.train.sample_tokens;
  so.temperature = 0.8;
  so.top_k = 40;
  so.seed = static_cast<uint64_t>(r.train.seed) * 1000003ull + static_cast<uint64_t>(step);
  so.stop_token = tok.eot_id();
  std::vector<int32_t> prompt = tok.encode(r.train.sample_prompt);
  std::vector<int32_t> ids = generate_tokens(model, prompt, so);
  return tok.decode(ids);
}

}  // namespace

TrainResult train(Recipe r, const Communicator& world) {
  check_recipe_can_run(r, world.size());
  install_stop_handlers();
  const bool lead = world.rank() == 0;
  int dp = r.dist.dp > 0 ? r.dist.dp : world.size();
  MT_CHECK(dp == world.size(), "dist.dp = ", r.dist.dp, " but the job has ", world.size(),
           " ranks; only pure data parallelism is supported, so dist.dp must be 0 or ", world.size());
  resolve_batch(r, dp);
  Device device = resolve_device(r, world);
  DType dtype = resolve_dtype(r, device);
  const std::string recipe_yaml = to_yaml(r);
  fs::path run_dir = r.train.run_dir;
  if (lead) {
    fs::create_directories(run_dir);
    std::ofstream(run_dir / "recipe.yaml") << recipe_yaml;
    std::printf("%s", recipe_yaml.c_str());
  }

  GPTConfig cfg = gpt_config_from_recipe(r);
  std::optional<ExpertParallel> ep;
  if (r.dist.ep > 1) ep.emplace(world, r.dist.ep, cfg.experts_per_block);
  Generator init_gen(static_cast<uint64_t>(r.train.seed));
  Generator dropout_gen(static_cast<uint64_t>(r.train.seed) + 1 + static_cast<uint64_t>(world.rank()));
  GPT model(cfg, init_gen, dropout_gen, ep ? &*ep : nullptr);
  model.to(device, dtype);
  const ExpertSharding sharding = expert_sharding(model, ep ? &*ep : nullptr);
  ParamCounts pc = count_parameters(cfg);
  if (lead)
    std::printf("model: %.2fM parameters (%.2fM active per token, %.2fM trainable) on %s in %s\n", pc.total / 1e6,
                pc.active / 1e6, model.num_parameters() / 1e6, device.str().c_str(), dtype_name(dtype));
  // ZeRO-1 partitions the replicated parameters' optimizer state; split experts keep theirs (already
  // one copy per expert-data-parallel rank).
  std::optional<ZeroPartition> zero;
  std::vector<NamedParameter> optimized = model.named_parameters();
  if (r.dist.zero == 1 && world.size() > 1) {
    std::vector<NamedParameter> replicated, experts;
    for (const NamedParameter& p : optimized) (sharding.shards.count(p.name) ? experts : replicated).push_back(p);
    zero.emplace(std::move(replicated), world);
    optimized = zero->owned();
    optimized.insert(optimized.end(), experts.begin(), experts.end());
  }
  std::unique_ptr<Optimizer> optimizer = make_optimizer(r, optimized);
  LrSchedule schedule(schedule_config(r));

  TokenLoaderOptions lo;
  lo.shards = {r.data.train};
  lo.batch_size = r.train.micro_batch;
  lo.seq_len = r.model.seq_len;
  lo.dp_rank = world.rank();
  lo.dp_size = dp;
  lo.seed = static_cast<uint64_t>(r.train.seed);
  lo.vocab_size = r.model.vocab_size;
  TokenLoader loader(lo);

  std::unique_ptr<Tokenizer> tokenizer;
  if (!r.data.tokenizer.empty() && r.train.sample_every > 0) tokenizer = std::make_unique<Tokenizer>(Tokenizer::load(r.data.tokenizer));

  // Resume.
  TrainCounters counters;
  counters.world_size = world.size();
  std::optional<fs::path> resume_from;
  if (r.checkpoint.resume == "auto") resume_from = find_latest_checkpoint(run_dir);
  else if (r.checkpoint.resume != "never") resume_from = resolve_checkpoint(r.checkpoint.resume);
  if (resume_from) {
    counters = load_train_checkpoint(*resume_from, model, optimizer.get(), &schedule, sharding.shards);
    loader.set_state(counters.loader);
    dropout_gen.set_state(counters.dropout_rng);
    counters.world_size = world.size();
    if (lead) std::printf("resumed from %s at step %ld\n", resume_from->string().c_str(), static_cast<long>(counters.step));
  }

  // Staged KD: the teacher lives until the step KD stops (not loaded at all when resuming past it).
  const int64_t kd_stop = distillation_stop_step(r);
  std::optional<LoadedModel> teacher;
  if (!r.distill.teacher.empty() && counters.step < kd_stop) {
    teacher = load_teacher(r, device);
    if (lead)
      std::printf("teacher: %s (step %ld), %.2fM parameters; KD until step %ld\n", teacher->checkpoint.string().c_str(),
                  static_cast<long>(teacher->step), teacher->model->num_parameters() / 1e6, static_cast<long>(kd_stop));
  }

  std::optional<MetricsLog> metrics;  // the lead rank alone writes run_dir (other ranks may start before it exists)
  if (lead) metrics.emplace((run_dir / "metrics.jsonl").string());
  Progress progress(detect_progress_style(r.log.progress == LogSection::Progress::kLine    ? "line"
                                          : r.log.progress == LogSection::Progress::kPlain ? "plain"
                                                                                           : "auto"),
                    r.log.every);
  const int64_t tokens_per_step = static_cast<int64_t>(r.train.global_batch) * r.model.seq_len;
  const double flops_per_token = train_flops_per_token(cfg);
  const bool is_moe = !cfg.experts_per_block.empty();

  // A rank that stops making progress (or waits on one that did) ends the job after dist.timeout.
  Watchdog watchdog(r.dist.timeout, world.rank());
  auto save = [&](const char* why) {
    watchdog.beat(counters.step, "a checkpoint write", /*watched=*/false);  // its length grows with the model
    counters.loader = loader.state();
    counters.dropout_rng = dropout_gen.state();
    fs::path p = checkpoint_path(run_dir, counters.step);
    if (lead) fs::create_directories(p.parent_path());
    // Every rank: expert shards and ZeRO-partitioned state are gathered to the lead, which writes.
    StateDict optim_state = optimizer->state_dict();
    if (zero)
      for (auto& [key, t] : zero->gather_optimizer_state(*optimizer, lead)) optim_state[key] = t;
    save_train_checkpoint(p, model, &optim_state, &schedule, counters, recipe_yaml, sharding.shards, lead);
    if (lead) {
      write_latest(run_dir, p);
      prune_checkpoints(run_dir, r.checkpoint.keep);
      progress.message(str_cat("checkpoint (", why, "): ", p.string()));
    }
    world.barrier();
  };

  TrainResult result;
  model.train();
  auto t_start = std::chrono::steady_clock::now();
  int64_t first_step = counters.step;
  while (counters.step < r.train.steps) {
    auto t0 = std::chrono::steady_clock::now();
    double loss_sum = 0, aux_sum = 0, kd_sum = 0;
    for (int micro = 0; micro < r.train.grad_accum; ++micro) {
      watchdog.beat(counters.step + 1, "the forward and backward");
      TokenBatch b = to_token_batch(loader.next_batch(), lo.batch_size, lo.seq_len, device);
      Tensor logits = model.forward(b.inputs);  // (B, T, V)
      Tensor logits2d = logits.view({-1, logits.size(-1)});
      Tensor loss = cross_entropy(logits2d, b.targets.view({-1}));
      Tensor total = loss.to(DType::F32);
      Tensor moe = model.moe_loss();
      if (moe.defined()) total = add(total, moe.to(DType::F32));
      Tensor kd;
      if (teacher) {
        Tensor teacher_logits;  // (B, T, V)
        {
          NoGradGuard ng;
          teacher_logits = teacher->model->forward(b.inputs);
        }
        kd = distillation_loss(logits2d, teacher_logits.view({-1, teacher_logits.size(-1)}), r.distill.temperature);
        total = add(total, mul(kd.to(DType::F32), r.distill.kd_coef));
      }
      mul(total, 1.0 / r.train.grad_accum).backward();
      // Read back only once the backward is queued: an earlier .item() would stall the GPU between them.
      loss_sum += loss.item();
      if (moe.defined()) aux_sum += moe.item();
      if (kd.defined()) kd_sum += kd.item();
    }
    watchdog.beat(counters.step + 1, "the gradient all-reduce");
    reduce_gradients(sharding, world);
    double grad_norm = clip_gradients(sharding, r.optim.grad_clip > 0 ? r.optim.grad_clip : 1e30);
    optimizer->set_lr(schedule.lr());
    double lr = schedule.lr();
    watchdog.beat(counters.step + 1, "the optimizer step");
    if (std::isfinite(grad_norm)) {
      optimizer->step();
      if (zero) zero->broadcast_parameters();
    } else {
      progress.message(str_cat("step ", counters.step + 1, ": non-finite gradient norm, update skipped"));
    }
    model.zero_grad();  // every gradient: under ZeRO the optimizer holds only its share of the parameters
    schedule.advance();
    counters.step += 1;
    counters.tokens += tokens_per_step;
    // The logged means over ranks, in one collective: loss, aux, kd.
    Tensor logged = Tensor::from_vector<double>({loss_sum, aux_sum, kd_sum}, {3});
    world.all_reduce(logged, ReduceKind::kAvg);
    std::vector<double> means = logged.to_vector<double>();
    const double loss = means[0] / r.train.grad_accum, aux = means[1] / r.train.grad_accum;
    const double kd = means[2] / r.train.grad_accum;
    const bool distilled = teacher.has_value();
    if (device.is_cuda()) synchronize(device);
    auto t1 = std::chrono::steady_clock::now();
    double dt = std::chrono::duration<double>(t1 - t0).count();
    double elapsed = std::chrono::duration<double>(t1 - t_start).count();
    double tok_s = tokens_per_step / dt;
    double eta = elapsed / static_cast<double>(counters.step - first_step) * static_cast<double>(r.train.steps - counters.step);
    result.last_loss = loss;
    if (lead) {
      std::vector<std::pair<std::string, double>> fields = {
          {"step", static_cast<double>(counters.step)}, {"tokens", static_cast<double>(counters.tokens)},
          {"loss", loss}, {"lr", lr}, {"grad_norm", grad_norm}, {"tokens_per_s", tok_s}, {"step_ms", dt * 1e3},
          {"memory_peak_bytes", static_cast<double>(allocator_stats(device).peak_allocated)}};
      std::vector<std::pair<std::string, std::string>> text;
      if (is_moe) {
        // Routing of the last micro-batch: drop rate averaged over MoE layers, kept tokens per expert.
        GPT::MoEStats st = model.moe_stats();
        double drop = 0;
        std::string load;
        for (size_t l = 0; l < st.drop_rate.size(); ++l) {
          drop += st.drop_rate[l] / static_cast<double>(st.drop_rate.size());
          load += (l ? "; " : "");
          for (size_t e = 0; e < st.tokens_per_expert[l].size(); ++e) {
            if (e) load += ',';
            load += std::to_string(st.tokens_per_expert[l][e]);
          }
        }
        fields.push_back({"aux", aux});
        fields.push_back({"drop_rate", drop});
        text.push_back({"tokens_per_expert", load});
      }
      if (distilled) fields.push_back({"kd", kd});
      if (device.is_cuda()) fields.push_back({"mfu", flops_per_token * tok_s * world.size() / 989e12});
      metrics->write(fields, text);
      progress.update({counters.step, r.train.steps, loss, lr, tok_s * world.size(), eta, is_moe ? aux : -1});
    }
    if (teacher && counters.step >= kd_stop) {
      teacher.reset();
      if (lead) progress.message(str_cat("step ", counters.step, ": knowledge distillation stopped (distill.stop_at), teacher freed"));
    }
    bool last = counters.step == r.train.steps;
    if (r.train.eval_every > 0 && (counters.step % r.train.eval_every == 0 || last)) {
      watchdog.beat(counters.step, "evaluation");
      double vl = evaluate(model, r, world, device);
      result.last_val_loss = vl;
      if (lead) {
        metrics->write({{"step", static_cast<double>(counters.step)}, {"tokens", static_cast<double>(counters.tokens)}, {"val_loss", vl}});
        progress.message(str_cat("step ", counters.step, ": val loss ", vl, " (perplexity ", std::exp(vl), ")"));
      }
    }
    // Split experts need every rank of their group in each forward: then every rank samples (the same text).
    bool sampler = lead || !sharding.sharded.empty();
    if (tokenizer && sampler && r.train.sample_every > 0 && (counters.step % r.train.sample_every == 0 || last)) {
      watchdog.beat(counters.step, "sampling");
      std::string text = sample_text(model, r, *tokenizer, counters.step);
      if (lead) {
        metrics->write({{"step", static_cast<double>(counters.step)}}, {{"sample", text}});
        progress.message(str_cat("sample at step ", counters.step, ":\n", text));
      }
    }
    watchdog.beat(counters.step, "the end-of-step check");
    bool stop = world.all_reduce(stop_requested() ? 1.0 : 0.0, ReduceKind::kMax) > 0;
    if (last || stop || (r.checkpoint.every > 0 && counters.step % r.checkpoint.every == 0)) save(last ? "end" : stop ? "signal" : "periodic");
    if (stop) {
      result.stopped_by_signal = true;
      break;
    }
  }
  progress.finish();
  result.steps_done = counters.step;
  result.steps_run = counters.step - first_step;
  return result;
}

}  // namespace mt
