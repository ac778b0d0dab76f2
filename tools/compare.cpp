// moetrain compare RUN...: one table row per run folder (variant, parameters, val loss, throughput,
// steps, MoE drop rate) printed, and with --out also written as compare.md next to val_loss.png,
// the validation loss of every run against tokens (or steps) on one plot.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "mt/core/error.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/gpt_from_recipe.h"
#include "mt/train/png_plot.h"
#include "mt/train/run_metrics.h"

namespace mt::cli {
namespace {

namespace fs = std::filesystem;

struct RunRow {
  std::string name;
  std::string variant;
  ParamCounts params;
  RunMetrics metrics;
  RunSummary summary;
};

// dense / MoE-N / Pyramid-MoE a..b / Residual-MoE / PR-MoE, plus " top-k" when k > 1.
std::string variant_name(const MoeSection& moe) {
  if (moe.dense()) return "dense";
  const bool pyramid = !moe.experts_per_layer.empty();
  const bool residual = moe.mlp_type == MlpType::kResidual;
  const std::vector<int>& list = moe.experts_per_layer;
  std::string name = pyramid && residual ? "PR-MoE"
                     : pyramid           ? str_cat("Pyramid-MoE ", list.front(), "..", list.back())
                     : residual          ? "Residual-MoE"
                                         : str_cat("MoE-", moe.experts);
  if (moe.top_k > 1) name += str_cat(" top-", moe.top_k);
  return name;
}

// The folder's own name, also for "runs/a/" and "runs/a/.".
std::string folder_name(const std::string& path) {
  fs::path p = fs::path(path).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();
  return p.filename().empty() ? path : p.filename().string();
}

RunRow read_run(const std::string& dir) {
  MT_CHECK(fs::is_directory(dir), "compare: ", dir, " is not a folder");
  const fs::path recipe = fs::path(dir) / "recipe.yaml", metrics = fs::path(dir) / "metrics.jsonl";
  MT_CHECK(fs::is_regular_file(recipe), "compare: run folder ", dir,
           " has no recipe.yaml (is it a moetrain run folder?)");
  MT_CHECK(fs::is_regular_file(metrics), "compare: run folder ", dir, " has no metrics.jsonl (has the run started?)");
  RunRow row;
  row.name = folder_name(dir);
  Recipe r = load_recipe(recipe.string());
  row.variant = variant_name(r.moe);
  row.params = count_parameters(gpt_config_from_recipe(r));
  row.metrics = read_run_metrics(metrics.string());
  row.summary = summarize(row.metrics);
  return row;
}

// 1234567 -> "1.23M", 45600 -> "45.6K".
std::string format_count(int64_t n) {
  const double x = static_cast<double>(n);
  char buf[32];
  if (x >= 1e9) std::snprintf(buf, sizeof(buf), "%.2fB", x / 1e9);
  else if (x >= 1e6) std::snprintf(buf, sizeof(buf), "%.2fM", x / 1e6);
  else if (x >= 1e3) std::snprintf(buf, sizeof(buf), "%.1fK", x / 1e3);
  else std::snprintf(buf, sizeof(buf), "%ld", static_cast<long>(n));
  return buf;
}

std::string format_fixed(const std::optional<double>& v, int decimals, const char* suffix = "") {
  if (!v) return "-";
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f%s", decimals, *v, suffix);
  return buf;
}

const std::vector<std::string> kHeader = {"run",           "variant",        "total params", "active params",
                                          "final val loss", "best val loss", "tokens/s",     "steps",
                                          "drop rate"};

std::vector<std::string> cells(const RunRow& r) {
  const RunSummary& s = r.summary;
  std::optional<double> drop_pct;
  if (s.last_drop_rate) drop_pct = *s.last_drop_rate * 100;
  return {r.name,
          r.variant,
          format_count(r.params.total),
          format_count(r.params.active),
          format_fixed(s.final_val_loss, 4),
          format_fixed(s.best_val_loss, 4),
          format_fixed(s.median_tokens_per_s, 0),
          str_cat(s.steps),
          format_fixed(drop_pct, 2, "%")};
}

// Columns 0 and 1 are text (left-aligned); the rest are numbers (right-aligned).
bool numeric_column(size_t c) { return c >= 2; }

std::string text_table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<size_t> width(kHeader.size());
  for (size_t c = 0; c < kHeader.size(); ++c) {
    width[c] = kHeader[c].size();
    for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(width[c] - row[c].size(), ' ');
      out += (c ? "  " : "") + (numeric_column(c) ? pad + row[c] : row[c] + pad);
    }
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::string out = line(kHeader);
  for (const auto& row : rows) out += line(row);
  return out;
}

std::string markdown_table(const std::vector<std::vector<std::string>>& rows) {
  auto line = [](const std::vector<std::string>& row) {
    std::string out = "|";
    for (const std::string& cell : row) out += " " + cell + " |";
    return out + "\n";
  };
  std::string out = line(kHeader) + "|";
  for (size_t c = 0; c < kHeader.size(); ++c) out += numeric_column(c) ? " ---: |" : " --- |";
  out += "\n";
  for (const auto& row : rows) out += line(row);
  return out;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  MT_CHECK(out.good(), "compare: cannot write ", path.string());
  out << text;
  out.close();
  MT_CHECK(!out.fail(), "compare: error writing ", path.string());
}

}  // namespace

void add_compare_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> runs;
    std::string out;
    std::string x = "tokens";
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("compare", "Compare runs: params, val loss, throughput, drop rate; a val-loss plot");
  c->add_option("runs", a->runs, "Run folders (each with recipe.yaml and metrics.jsonl)")->required();
  c->add_option("--out", a->out, "Folder for compare.md and val_loss.png; without it the table is only printed");
  c->add_option("--x", a->x, "X axis of the plot: tokens or step")->check(CLI::IsMember({"tokens", "step"}));
  c->callback([a] {
    std::vector<RunRow> runs;
    for (const std::string& dir : a->runs) runs.push_back(read_run(dir));
    std::vector<std::vector<std::string>> rows;
    for (const RunRow& r : runs) rows.push_back(cells(r));
    std::fputs(text_table(rows).c_str(), stdout);
    if (a->out.empty()) return;

    fs::create_directories(a->out);
    const fs::path md = fs::path(a->out) / "compare.md", png = fs::path(a->out) / "val_loss.png";
    const bool by_tokens = a->x == "tokens";
    std::vector<PlotSeries> series;
    bool any_eval = false;
    for (const RunRow& r : runs) {
      PlotSeries s;
      s.name = r.metrics.eval.empty() ? r.name + " (no eval)" : r.name;
      for (const EvalPoint& p : r.metrics.eval) {
        s.x.push_back(by_tokens ? p.tokens : static_cast<double>(p.step));
        s.y.push_back(p.val_loss);
      }
      any_eval = any_eval || !s.x.empty();
      series.push_back(std::move(s));
    }
    std::string doc = "# Run comparison\n\n" + markdown_table(rows) +
                      "\nTotal and active (per token) parameters come from each run's recipe; tokens/s is the "
                      "median over training steps; drop rate is the last reported fraction of tokens over expert "
                      "capacity.\n";
    if (any_eval) {
      write_png(render_line_plot(series, {"Validation loss", by_tokens ? "tokens" : "step", "val loss"}), png.string());
      doc += "\n![validation loss vs " + a->x + "](val_loss.png)\n";
    } else {
      std::fprintf(stderr, "compare: no run has eval lines (val_loss); %s not written\n", png.string().c_str());
    }
    write_text(md, doc);
    std::printf("wrote %s%s\n", md.string().c_str(), any_eval ? (" and " + png.string()).c_str() : "");
  });
}

}  // namespace mt::cli
