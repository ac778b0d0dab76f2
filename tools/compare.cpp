// moetrain compare RUN...: one table row per variant (parameters, val loss, throughput, steps, MoE
// drop rate), printed, and with --out also written as compare.md next to val_loss.png, the
// validation loss of every variant against tokens (or steps) on one plot. Runs of one recipe that
// differ only in train.seed form one row (Note [Seed groups]): mean ± standard deviation over the
// seeds, n, a shaded band on the plot, and which gaps between rows exceed two standard errors.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "commands.h"
#include "mt/core/error.h"
#include "mt/io/recipe.h"
#include "mt/nn/gpt.h"
#include "mt/train/gpt_from_recipe.h"
#include "report/png_plot.h"
#include "report/run_metrics.h"
#include "report/seed_groups.h"

namespace mt::cli {
namespace {

namespace fs = std::filesystem;

struct Run {
  std::string name;
  Recipe recipe;
  RunMetrics metrics;
  RunSummary summary;
};

// Runs of one recipe, one seed each (one run when the recipe has no other seed given).
struct Group {
  std::string name;
  std::string variant;
  ParamCounts params;
  std::vector<const Run*> runs;
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

Run read_run(const std::string& dir) {
  MT_CHECK(fs::is_directory(dir), "compare: ", dir, " is not a folder");
  const fs::path recipe = fs::path(dir) / "recipe.yaml", metrics = fs::path(dir) / "metrics.jsonl";
  MT_CHECK(fs::is_regular_file(recipe), "compare: run folder ", dir,
           " has no recipe.yaml (is it a moetrain run folder?)");
  MT_CHECK(fs::is_regular_file(metrics), "compare: run folder ", dir, " has no metrics.jsonl (has the run started?)");
  Run run;
  run.name = folder_name(dir);
  run.recipe = load_recipe(recipe.string());
  run.metrics = read_run_metrics(metrics.string());
  run.summary = summarize(run.metrics);
  return run;
}

std::vector<Group> make_groups(const std::vector<Run>& runs) {
  std::vector<Recipe> recipes;
  for (const Run& r : runs) recipes.push_back(r.recipe);
  std::vector<Group> groups;
  for (const std::vector<size_t>& members : group_by_seed(recipes)) {
    Group g;
    std::vector<std::string> names;
    for (size_t i : members) {
      g.runs.push_back(&runs[i]);
      names.push_back(runs[i].name);
    }
    g.name = group_name(names);
    g.variant = variant_name(runs[members[0]].recipe.moe);
    g.params = count_parameters(gpt_config_from_recipe(runs[members[0]].recipe));
    groups.push_back(std::move(g));
  }
  return groups;
}

// One summary value over a group's runs, from those runs that have it.
template <typename F>
std::optional<Spread> spread_over(const Group& g, F value) {
  std::vector<double> values;
  for (const Run* r : g.runs)
    if (std::optional<double> v = value(r->summary)) values.push_back(*v);
  return spread_of(values);
}

std::optional<Spread> final_val_loss(const Group& g) {
  return spread_over(g, [](const RunSummary& s) { return s.final_val_loss; });
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

std::string format_fixed(double v, int decimals, const char* suffix = "") {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.*f%s", decimals, v, suffix);
  return buf;
}

// "4.7010 ± 0.0030" over two or more values, "4.7010" over one, "-" over none.
std::string format_spread(const std::optional<Spread>& s, int decimals, double scale = 1, const char* suffix = "") {
  if (!s) return "-";
  std::string out = format_fixed(s->mean * scale, decimals, suffix);
  if (s->n > 1) out += " ± " + format_fixed(s->std * scale, decimals, suffix);
  return out;
}

// "400", or "300..400" when the runs of a group stopped at different steps.
std::string format_steps(const Group& g) {
  int64_t lo = g.runs[0]->summary.steps, hi = lo;
  for (const Run* r : g.runs) lo = std::min(lo, r->summary.steps), hi = std::max(hi, r->summary.steps);
  return lo == hi ? str_cat(lo) : str_cat(lo, "..", hi);
}

const std::vector<std::string> kHeader = {"run",           "variant",       "n",        "total params",
                                          "active params", "final val loss", "best val loss", "tokens/s",
                                          "steps",         "drop rate"};

std::vector<std::string> cells(const Group& g) {
  return {g.name,
          g.variant,
          str_cat(g.runs.size()),
          format_count(g.params.total),
          format_count(g.params.active),
          format_spread(final_val_loss(g), 4),
          format_spread(spread_over(g, [](const RunSummary& s) { return s.best_val_loss; }), 4),
          format_spread(spread_over(g, [](const RunSummary& s) { return s.median_tokens_per_s; }), 0),
          format_steps(g),
          format_spread(spread_over(g, [](const RunSummary& s) { return s.last_drop_rate; }), 2, 100, "%")};
}

// A header and rows of cells; numeric columns are right-aligned, the others left-aligned.
struct Table {
  std::vector<std::string> header;
  std::vector<bool> numeric;  // per column
  std::vector<std::vector<std::string>> rows;
};

// Terminal columns of a UTF-8 string ("±" is one).
size_t display_width(const std::string& s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

std::string text_table(const Table& t) {
  std::vector<size_t> width(t.header.size());
  for (size_t c = 0; c < t.header.size(); ++c) {
    width[c] = display_width(t.header[c]);
    for (const auto& row : t.rows) width[c] = std::max(width[c], display_width(row[c]));
  }
  auto line = [&](const std::vector<std::string>& row) {
    std::string out;
    for (size_t c = 0; c < row.size(); ++c) {
      std::string pad(width[c] - display_width(row[c]), ' ');
      out += (c ? "  " : "") + (t.numeric[c] ? pad + row[c] : row[c] + pad);
    }
    out.erase(out.find_last_not_of(' ') + 1);
    return out + "\n";
  };
  std::string out = line(t.header);
  for (const auto& row : t.rows) out += line(row);
  return out;
}

std::string markdown_table(const Table& t) {
  auto line = [](const std::vector<std::string>& row) {
    std::string out = "|";
    for (const std::string& cell : row) out += " " + cell + " |";
    return out + "\n";
  };
  std::string out = line(t.header) + "|";
  for (size_t c = 0; c < t.header.size(); ++c) out += t.numeric[c] ? " ---: |" : " --- |";
  out += "\n";
  for (const auto& row : t.rows) out += line(row);
  return out;
}

// Every pair of groups with two or more final val losses each: the difference of their means and
// whether it exceeds two standard errors. Empty when fewer than two groups qualify.
struct Gap {
  const Group *a, *b;
  MeanDifference d;
};
std::vector<Gap> gaps(const std::vector<Group>& groups) {
  std::vector<Gap> out;
  for (size_t i = 0; i < groups.size(); ++i)
    for (size_t j = i + 1; j < groups.size(); ++j) {
      const std::optional<Spread> a = final_val_loss(groups[i]), b = final_val_loss(groups[j]);
      if (!a || !b) continue;
      if (std::optional<MeanDifference> d = difference_of_means(*a, *b)) out.push_back({&groups[i], &groups[j], *d});
    }
  return out;
}

Table gap_table(const std::vector<Gap>& gaps) {
  Table t{{"A", "B", "A - B", "2 SE", "beyond 2 SE"}, {false, false, true, true, false}, {}};
  for (const Gap& g : gaps)
    t.rows.push_back({g.a->name, g.b->name, format_fixed(g.d.diff, 4), format_fixed(2 * g.d.se, 4),
                      g.d.beyond_two_se() ? "yes" : "no"});
  return t;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  MT_CHECK(out.good(), "compare: cannot write ", path.string());
  out << text;
  out.close();
  MT_CHECK(!out.fail(), "compare: error writing ", path.string());
}

// The Markdown document: the table, how to read it, the gaps with a sentence naming those beyond
// two standard errors, and the plot when there is one.
std::string markdown(const std::vector<Group>& groups, const Table& table, const std::vector<Gap>& gap_list,
                     bool seeded, const std::string& plot_line) {
  std::string doc = "# Run comparison\n\n" + markdown_table(table) +
                    "\nTotal and active (per token) parameters come from each run's recipe; tokens/s is the median "
                    "over training steps; drop rate is the last reported fraction of tokens over expert capacity.\n";
  if (seeded)
    doc += "\nRuns of one recipe that differ only in `train.seed` share a row: n runs, mean ± sample standard "
           "deviation (n - 1 in the denominator) over them.\n";
  if (!gap_list.empty()) {
    doc += "\n## Differences in final val loss\n\n" + markdown_table(gap_table(gap_list)) +
           "\nA - B is the difference of the rows' mean final val loss; SE = sqrt(s_A^2 / n_A + s_B^2 / n_B) is its "
           "standard error (Welch's). With many seeds, normal seed noise alone goes beyond two standard errors 5% "
           "of the time; with few the standard errors are rough themselves (with 3 seeds per row 12 to 18% of "
           "the time: Student's t with 2 to 4 degrees of freedom), so a mark is a screen, not a test at a fixed "
           "level.\n\n";
    std::vector<std::string> beyond;
    for (const Gap& g : gap_list)
      if (g.d.beyond_two_se()) beyond.push_back(g.a->name + " vs " + g.b->name);
    if (beyond.empty()) {
      doc += "No difference exceeds two standard errors.\n";
    } else {
      doc += "Beyond two standard errors: ";
      for (size_t k = 0; k < beyond.size(); ++k) doc += (k ? ", " : "") + beyond[k];
      doc += ".\n";
    }
  } else if (seeded && groups.size() > 1) {
    doc += "\nDifferences are judged only between rows with two or more runs each.\n";
  }
  return doc + plot_line;
}

}  // namespace

void add_compare_command(CLI::App& app) {
  struct Args {
    std::vector<std::string> runs;
    std::string out;
    std::string x = "tokens";
  };
  auto a = std::make_shared<Args>();
  CLI::App* c = app.add_subcommand("compare", "Compare runs: params, val loss, throughput, drop rate; a val-loss plot; "
                                              "seeds of one recipe as mean ± std");
  c->add_option("runs", a->runs, "Run folders (each with recipe.yaml and metrics.jsonl)")->required();
  c->add_option("--out", a->out, "Folder for compare.md and val_loss.png; without it the table is only printed");
  c->add_option("--x", a->x, "X axis of the plot: tokens or step")->check(CLI::IsMember({"tokens", "step"}));
  c->callback([a] {
    std::vector<Run> runs;
    for (const std::string& dir : a->runs) runs.push_back(read_run(dir));
    const std::vector<Group> groups = make_groups(runs);
    const bool seeded = groups.size() < runs.size();
    Table table{kHeader, std::vector<bool>(kHeader.size(), true), {}};
    table.numeric[0] = table.numeric[1] = false;  // run, variant
    for (const Group& g : groups) table.rows.push_back(cells(g));
    std::fputs(text_table(table).c_str(), stdout);
    const std::vector<Gap> gap_list = gaps(groups);
    if (!gap_list.empty())
      std::printf("\nfinal val loss, differences of row means (A - B) against two standard errors:\n%s",
                  text_table(gap_table(gap_list)).c_str());
    if (a->out.empty()) return;

    fs::create_directories(a->out);
    const fs::path md = fs::path(a->out) / "compare.md", png = fs::path(a->out) / "val_loss.png";
    const bool by_tokens = a->x == "tokens";
    std::vector<PlotSeries> series;
    bool any_eval = false;
    for (const Group& g : groups) {
      std::vector<const RunMetrics*> metrics;
      for (const Run* r : g.runs) metrics.push_back(&r->metrics);
      const std::string label = g.runs.size() > 1 ? str_cat(g.name, " (n=", g.runs.size(), ")") : g.name;
      PlotSeries s = mean_eval_curve(label, metrics, by_tokens);
      if (s.x.empty()) s.name += " (no eval)";
      any_eval = any_eval || !s.x.empty();
      series.push_back(std::move(s));
    }
    std::string plot_line;
    if (any_eval) {
      write_png(render_line_plot(series, {"Validation loss", by_tokens ? "tokens" : "step", "val loss"}), png.string());
      plot_line = "\n![validation loss vs " + a->x + "](val_loss.png)\n";
      if (seeded) plot_line += "\nA row of several seeds is drawn as their mean, shaded from the lowest to the highest seed.\n";
    } else {
      std::fprintf(stderr, "compare: no run has eval lines (val_loss); %s not written\n", png.string().c_str());
    }
    write_text(md, markdown(groups, table, gap_list, seeded, plot_line));
    std::printf("wrote %s%s\n", md.string().c_str(), any_eval ? (" and " + png.string()).c_str() : "");
  });
}

}  // namespace mt::cli
