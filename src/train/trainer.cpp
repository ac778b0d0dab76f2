// The training loop, as named steps over a TrainingRun: micro-batches forward and backward, the
// distributed optimizer, logging, evaluation, samples and checkpoints on cadence, divergence and
// signal handling. Note [Determinism]: CPU kernels are deterministic for a fixed thread count, the
// loader's order comes from the seed, and every rank's random stream is saved in checkpoints, so a
// resumed run repeats the original run's losses exactly.
#include "mt/train/trainer.h"

#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "mt/io/checkpoint_dir.h"
#include "mt/io/checkpoint_fs.h"
#include "mt/ops/ops.h"
#include "mt/train/exit_status.h"
#include "mt/train/metrics_log.h"
#include "mt/train/preflight.h"
#include "mt/train/progress.h"
#include "mt/train/sampling.h"
#include "mt/train/stop_signal.h"
#include "mt/train/train_step.h"
#include "mt/train/training_run.h"
#include "mt/train/validation.h"
#include "mt/train/watchdog.h"

namespace mt {

namespace fs = std::filesystem;

namespace {

// One optimizer step's results, averaged over micro-batches and ranks.
struct StepResult {
  double loss = 0, aux = 0, kd = 0, grad_norm = 0, lr = 0, seconds = 0;
  bool skipped = false;  // non-finite loss or gradient norm: no update
};

ProgressStyle progress_style(const LogSection& log) {
  return detect_progress_style(log.progress == LogSection::Progress::kLine    ? "line"
                               : log.progress == LogSection::Progress::kPlain ? "plain"
                                                                              : "auto");
}

class Trainer {
 public:
  Trainer(TrainingRun& run, const Communicator& world)
      : run_(run),
        recipe_(run.recipe),
        world_(world),
        lead_(run.lead),
        progress_(progress_style(recipe_.log), recipe_.log.every),
        watchdog_(recipe_.dist.timeout, world.rank()),
        train_step_(*run.model, *run.optimizer, recipe_, world.size(), run.device, run.dropout_gen) {}

  TrainResult train() {
    lead_io(ExitStatus::kError, [&] {
      fs::create_directories(run_.run_dir);
      write_file_durably(run_.run_dir / "recipe.yaml", run_.recipe_yaml);
      metrics_.emplace((run_.run_dir / "metrics.jsonl").string());
    });
    agree_on_lead_failure();
    TrainResult result;
    run_.model->train();
    start_ = std::chrono::steady_clock::now();
    while (run_.counters.step < recipe_.train.steps) {
      const StepResult stepped = step();
      result.last_loss = stepped.loss;
      log_step(stepped);
      check_divergence(stepped);
      if (run_.teacher && run_.counters.step >= run_.kd_stop) {
        run_.teacher.reset();
        message(str_cat("step ", run_.counters.step, ": knowledge distillation stopped (distill.stop_at), teacher freed"));
      }
      const bool last = run_.counters.step == recipe_.train.steps;
      if (due(recipe_.train.eval_every, last)) result.last_val_loss = evaluate();
      if (run_.tokenizer && due(recipe_.train.sample_every, last)) sample();
      const bool stop = agree_to_stop();
      if (last || stop || due(recipe_.checkpoint.every, false)) save(last ? "end" : stop ? "signal" : "periodic");
      if (stop) {
        result.stopped_by_signal = true;
        break;
      }
    }
    progress_.finish();
    result.steps_done = run_.counters.step;
    result.steps_run = run_.counters.step - run_.first_step;
    return result;
  }

 private:
  bool due(int every, bool last) const { return every > 0 && (run_.counters.step % every == 0 || last); }

  // Micro-batches forward and backward, then the distributed optimizer (TrainStep, replayed as a CUDA graph
  // where it can be); the update is skipped when the agreed loss or the gradient norm is not finite.
  StepResult step() {
    const auto started = std::chrono::steady_clock::now();
    watchdog_.beat(run_.counters.step + 1, "the training step");
    std::vector<TokenBatch> batches;
    for (int micro = 0; micro < recipe_.train.grad_accum; ++micro)
      batches.push_back(
          to_token_batch(run_.loader->next_batch(), recipe_.train.micro_batch, recipe_.model.seq_len, run_.device));
    StepResult result;
    result.lr = run_.schedule.lr();
    const StepSums sums = train_step_.run(batches, run_.teacher ? run_.teacher->model.get() : nullptr, result.lr);
    say_graph_state();
    // Means over ranks, one collective.
    Tensor logged = Tensor::from_vector<double>({sums.loss, sums.aux, sums.kd}, {3});
    world_.all_reduce(logged, ReduceKind::kAvg);
    const std::vector<double> means = logged.to_vector<double>();
    const double micro_batches = recipe_.train.grad_accum;
    result.loss = means[0] / micro_batches, result.aux = means[1] / micro_batches, result.kd = means[2] / micro_batches;
    result.grad_norm = sums.grad_norm;
    result.skipped = !sums.applied;
    run_.schedule.advance();
    run_.counters.step += 1;
    run_.counters.tokens += static_cast<int64_t>(recipe_.train.global_batch) * recipe_.model.seq_len;
    result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
    return result;
  }

  // Once: whether the steps replay a CUDA graph from now on, or why they stay eager on a GPU.
  void say_graph_state() {
    if (graph_said_ || !run_.device.is_cuda()) return;
    if (train_step_.replaying()) {
      message(str_cat("step ", run_.counters.step + 1, ": captured as a CUDA graph; later steps replay it"));
      graph_said_ = true;
    } else if (!train_step_.eager_reason().empty()) {
      message(str_cat("steps run eagerly, not as a CUDA graph: ", train_step_.eager_reason()));
      graph_said_ = true;
    }
  }

  // A skipped step is said and counted; train.max_bad_steps of them in a row end the run on every rank
  // (they all see the same agreed values), without a checkpoint.
  void check_divergence(const StepResult& result) {
    if (!result.skipped) {
      bad_in_row_ = 0;
      return;
    }
    ++bad_in_row_;
    message(str_cat("step ", run_.counters.step, ": non-finite ", std::isfinite(result.loss) ? "gradient norm" : "loss",
                    ", update skipped (", bad_in_row_,
                    " in a row of at most train.max_bad_steps = ", recipe_.train.max_bad_steps, ")"));
    if (bad_in_row_ >= recipe_.train.max_bad_steps)
      throw RunError(ExitStatus::kDiverged,
                     str_cat("the run diverged: at step ", run_.counters.step, ", ", bad_in_row_,
                             " steps in a row had a non-finite loss or gradient norm (train.max_bad_steps = ",
                             recipe_.train.max_bad_steps,
                             "); stopped without saving, the last good checkpoint stays latest "
                             "(lower optim.lr or raise schedule.warmup_steps)"));
  }

  void log_step(const StepResult& result) {
    if (!lead_) return;
    const double tokens_per_s =
        static_cast<double>(recipe_.train.global_batch) * recipe_.model.seq_len / result.seconds;  // all ranks
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    const int64_t steps_done = run_.counters.step - run_.first_step;
    const double eta =
        elapsed / static_cast<double>(steps_done) * static_cast<double>(recipe_.train.steps - run_.counters.step);
    const bool moe = !run_.config.experts_per_block.empty();
    std::vector<std::pair<std::string, double>> fields = {
        {"step", static_cast<double>(run_.counters.step)},
        {"tokens", static_cast<double>(run_.counters.tokens)},
        {"loss", result.loss},
        {"lr", result.lr},
        {"grad_norm", result.grad_norm},
        {"skipped", result.skipped ? 1.0 : 0.0},
        {"tokens_per_s", tokens_per_s},
        {"step_ms", result.seconds * 1e3},
        {"memory_peak_bytes", static_cast<double>(allocator_stats(run_.device).peak_allocated)}};
    std::vector<std::pair<std::string, std::string>> text;
    if (moe) {
      // Routing of the last micro-batch: drop rate averaged over MoE layers, kept tokens per expert.
      GPT::MoEStats stats = run_.model->moe_stats();
      double drop_rate = 0;
      std::string expert_load;
      for (size_t layer = 0; layer < stats.drop_rate.size(); ++layer) {
        drop_rate += stats.drop_rate[layer] / static_cast<double>(stats.drop_rate.size());
        expert_load += (layer ? "; " : "");
        for (size_t expert = 0; expert < stats.tokens_per_expert[layer].size(); ++expert)
          expert_load += (expert ? "," : "") + std::to_string(stats.tokens_per_expert[layer][expert]);
      }
      fields.push_back({"aux", result.aux});
      fields.push_back({"drop_rate", drop_rate});
      text.push_back({"tokens_per_expert", expert_load});
    }
    if (run_.loader->num_sources() > 1)  // a mixture: training tokens drawn from each source so far (all ranks)
      for (size_t i = 0; i < run_.loader->num_sources(); ++i)
        fields.push_back({str_cat("source", i, "_tokens"),
                          static_cast<double>(run_.loader->state()[i].sequences * recipe_.model.seq_len)});
    if (run_.teacher) fields.push_back({"kd", result.kd});
    if (run_.device.is_cuda())
      fields.push_back({"mfu", train_flops_per_token(run_.config) * tokens_per_s / world_.size() / 989e12});
    lead_io(ExitStatus::kError, [&] { metrics_->write(fields, text); });
    progress_.update(
        {run_.counters.step, recipe_.train.steps, result.loss, result.lr, tokens_per_s, eta, moe ? result.aux : -1});
  }

  double evaluate() {
    watchdog_.beat(run_.counters.step, "evaluation");
    TokenLoader val_loader(loader_options(recipe_, world_, recipe_.data.val, LoaderOrder::kSequential));
    const int64_t steps =
        std::min<int64_t>(recipe_.train.eval_steps, std::max<int64_t>(1, val_loader.steps_per_epoch()));
    const double val_loss =
        world_.all_reduce(validation_loss(*run_.model, val_loader, steps, run_.device), ReduceKind::kAvg);
    lead_io(ExitStatus::kError, [&] {
      metrics_->write({{"step", static_cast<double>(run_.counters.step)},
                       {"tokens", static_cast<double>(run_.counters.tokens)},
                       {"val_loss", val_loss}});
    });
    message(str_cat("step ", run_.counters.step, ": val loss ", val_loss, " (perplexity ", std::exp(val_loss), ")"));
    return val_loss;
  }

  // Split experts need every rank of their group in each forward: then every rank samples (the same text).
  void sample() {
    if (!lead_ && run_.sharding.sharded.empty()) return;
    watchdog_.beat(run_.counters.step, "sampling");
    SamplingOptions options;
    options.max_tokens = recipe_.train.sample_tokens;
    options.temperature = 0.8;
    options.top_k = 40;
    options.seed = static_cast<uint64_t>(recipe_.train.seed) * 1000003ull + static_cast<uint64_t>(run_.counters.step);
    options.stop_token = run_.tokenizer->eot_id();
    const std::vector<int32_t> ids =
        generate_tokens(*run_.model, run_.tokenizer->encode(recipe_.train.sample_prompt), options);
    const std::string text = run_.tokenizer->decode(ids);
    lead_io(ExitStatus::kError, [&] { metrics_->write({{"step", static_cast<double>(run_.counters.step)}}, {{"sample", text}}); });
    message(str_cat("sample at step ", run_.counters.step, ":\n", text));
  }

  // Every rank: expert shards, ZeRO-partitioned state and the ranks' random streams are gathered to the
  // lead, which writes; then every rank learns whether it succeeded. checkpoint.format sharded: every
  // rank writes its own part (Note [Sharded checkpoints]) and the lead then points `latest` at it.
  void save(const char* why) {
    watchdog_.beat(run_.counters.step, "a checkpoint write", /*watched=*/false);  // its length grows with the model
    run_.counters.loader = run_.loader->state();
    run_.counters.rank_rngs = gather_rank_streams();
    if (recipe_.checkpoint.format == CheckpointSection::Format::kSharded) {
      const fs::path folder = sharded_checkpoint_path(run_.run_dir, run_.counters.step);
      const StateDict optim_state = run_.optimizer->local().state_dict();
      try {  // every rank throws together (write_sharded_checkpoint agrees on the outcome)
        save_sharded_train_checkpoint(folder, world_, *run_.model, &optim_state, &run_.schedule, run_.counters,
                                      run_.recipe_yaml, run_.sharding.shards);
      } catch (const NonFiniteError& e) {
        throw RunError(ExitStatus::kDiverged, e.what());
      } catch (const Error& e) {
        throw RunError(ExitStatus::kError, e.what());
      }
      lead_io(ExitStatus::kError, [&] {
        write_latest(run_.run_dir, folder);
        prune_checkpoints(run_.run_dir, recipe_.checkpoint.keep);
      });
      if (!lead_failure_) message(str_cat("checkpoint (", why, "): ", folder.string()));
      agree_on_lead_failure();
      return;
    }
    const fs::path path = checkpoint_path(run_.run_dir, run_.counters.step);
    StateDict optim_state = run_.optimizer->checkpoint_state(lead_);
    auto write = [&] {
      if (lead_) fs::create_directories(path.parent_path());
      save_train_checkpoint(path, *run_.model, &optim_state, &run_.schedule, run_.counters, run_.recipe_yaml,
                            run_.sharding.shards, lead_);
    };
    if (lead_) {
      lead_io(ExitStatus::kError, [&] {
        try {
          write();
        } catch (const NonFiniteError& e) {
          throw RunError(ExitStatus::kDiverged, e.what());
        }
        write_latest(run_.run_dir, path);
        prune_checkpoints(run_.run_dir, recipe_.checkpoint.keep);
      });
      if (!lead_failure_) message(str_cat("checkpoint (", why, "): ", path.string()));
    } else {
      write();  // only the collectives
    }
    agree_on_lead_failure();
  }

  std::vector<GeneratorState> gather_rank_streams() const {
    const GeneratorState mine = run_.dropout_gen.state();
    Tensor local =
        Tensor::from_vector<int64_t>({static_cast<int64_t>(mine.seed), static_cast<int64_t>(mine.offset)}, {2});
    Tensor gathered = Tensor::empty({2 * static_cast<int64_t>(world_.size())}, DType::kI64, Device::cpu());
    world_.all_gather(local, gathered);
    std::vector<int64_t> values = gathered.to_vector<int64_t>();
    std::vector<GeneratorState> out;
    for (size_t i = 0; i < values.size(); i += 2)
      out.push_back({static_cast<uint64_t>(values[i]), static_cast<uint64_t>(values[i + 1])});
    return out;
  }

  // Note [Errors every rank raises together] (exit_status.h): a write of the run folder that fails on the
  // lead is kept, and shared at the next agreement point.
  template <typename F>
  void lead_io(ExitStatus status, F&& write) {
    if (!lead_ || lead_failure_) return;
    try {
      write();
    } catch (const RunError& e) {
      lead_failure_.emplace(e.status(), e.what());
    } catch (const std::exception& e) {
      lead_failure_.emplace(status, e.what());
    }
  }

  // The agreement points: every rank learns of a lead failure (and ends with its status) and of a stop
  // request on any rank (SIGINT/SIGTERM), in one collective.
  bool agree(bool want_stop) {
    Tensor flags = Tensor::from_vector<double>(
        {lead_failure_ ? static_cast<double>(lead_failure_->status()) : 0.0, want_stop && stop_requested() ? 1.0 : 0.0},
        {2});
    world_.all_reduce(flags, ReduceKind::kMax);
    const std::vector<double> shared = flags.to_vector<double>();
    if (shared[0] != 0) {
      if (lead_failure_) throw *lead_failure_;
      throw RunError(static_cast<ExitStatus>(static_cast<int>(shared[0])),
                     "rank 0 could not write the run folder (its message says why)");
    }
    return shared[1] > 0;
  }
  void agree_on_lead_failure() { agree(false); }

  bool agree_to_stop() {
    watchdog_.beat(run_.counters.step, "the end-of-step check");
    return agree(true);
  }

  void message(const std::string& text) {
    if (lead_) progress_.message(text);
  }

  TrainingRun& run_;
  const Recipe& recipe_;
  const Communicator& world_;
  const bool lead_;
  std::optional<MetricsLog> metrics_;  // the lead alone writes run_dir
  std::optional<RunError> lead_failure_;
  Progress progress_;
  Watchdog watchdog_;  // a rank that stops making progress (or waits on one that did) ends the job after dist.timeout
  TrainStep train_step_;
  bool graph_said_ = false;
  std::chrono::steady_clock::time_point start_;
  int bad_in_row_ = 0;
};

}  // namespace

TrainResult train(Recipe recipe, const Communicator& world) {
  check_recipe_can_run(recipe, world.size());
  install_stop_handlers();
  TrainingRun run(std::move(recipe), world);
  return Trainer(run, world).train();
}

}  // namespace mt
