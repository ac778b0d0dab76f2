// RunMetrics tests: JSON lines read back (MetricsLog's escapes, a malformed line named by
// file:line:column), the series read from a metrics.jsonl as MetricsLog writes it, and the summary.
#include "report/run_metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "mt/core/error.h"
#include "mt/train/metrics_log.h"

namespace mt {
namespace {

namespace fs = std::filesystem;

class MetricsDir {
 public:
  MetricsDir() {
    std::string pattern = (fs::temp_directory_path() / "mt_run_metrics_test_XXXXXX").string();
    EXPECT_NE(mkdtemp(pattern.data()), nullptr);
    path_ = pattern;
  }
  ~MetricsDir() { fs::remove_all(path_); }
  std::string write(const std::string& text) const {
    std::string p = (path_ / "metrics.jsonl").string();
    std::ofstream(p, std::ios::trunc) << text;
    return p;
  }
  std::string file() const { return (path_ / "metrics.jsonl").string(); }

 private:
  fs::path path_;
};

// The message of the mt::Error that `f` throws ("" when it throws none).
template <typename F>
std::string error_of(F f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(JsonLines, ReadsMetricsLogEscapesBack) {
  MetricsDir dir;
  const std::string sample = "In the \"beginning\"\n\tGod\\ said \x01";
  {
    MetricsLog log(dir.file());
    log.write({{"step", 3}}, {{"sample", sample}});
  }
  std::vector<JsonLine> lines = read_json_lines(dir.file());
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_NE(lines[0].find("sample"), nullptr);
  EXPECT_EQ(lines[0].line, 1);
  EXPECT_EQ(lines[0].find("step")->number, 3);
  EXPECT_EQ(lines[0].find("sample")->text, sample);
  EXPECT_EQ(lines[0].find("nope"), nullptr);
}

TEST(JsonLines, MalformedLineNamesFileAndLine) {
  MetricsDir dir;
  std::string path = dir.write("{\"step\": 1, \"loss\": 2}\n\n{\"step\": 2, \"loss\": 2\n");
  std::string err = error_of([&] { read_json_lines(path); });
  EXPECT_NE(err.find(path + ":3:22: malformed JSON line: expected ',' or '}' after a member, got the end of the text"),
            std::string::npos)
      << err;
  path = dir.write("{\"step\": 1}\n[1, 2]\n");
  err = error_of([&] { read_json_lines(path); });
  EXPECT_NE(err.find(path + ":2: expected a JSON object ({...}), got an array"), std::string::npos) << err;
}

TEST(JsonLines, MissingFileIsNamed) {
  std::string err = error_of([] { read_json_lines("/nonexistent/metrics.jsonl"); });
  EXPECT_NE(err.find("cannot open /nonexistent/metrics.jsonl"), std::string::npos) << err;
}

// Lines as the trainer writes them: training, eval, drop rate and sample lines.
const char* kRun =
    R"({"step": 1, "tokens": 2048, "loss": 8.3, "lr": 2.5e-05, "grad_norm": 3.1, "tokens_per_s": 9000, "step_ms": 227, "memory_peak_bytes": 1000, "aux": 0.02}
{"step": 1, "drop_rate": 0.25}
{"step": 2, "tokens": 4096, "loss": 7.9, "lr": 5e-05, "grad_norm": 2.9, "tokens_per_s": 11000, "step_ms": 186, "memory_peak_bytes": 1000}
{"step": 2, "tokens": 4096, "val_loss": 7.5}
{"step": 2, "sample": "And God said"}
{"step": 3, "tokens": 6144, "loss": 7.1, "lr": 7.5e-05, "grad_norm": 2.5, "tokens_per_s": 10000, "step_ms": 204, "memory_peak_bytes": 1000, "drop_rate": 0.125}
{"step": 4, "tokens": 8192, "loss": null, "lr": 1e-04, "grad_norm": null, "tokens_per_s": 30000, "step_ms": 68, "memory_peak_bytes": 1000}
{"step": 4, "tokens": 8192, "val_loss": 6.25}
{"step": 5, "tokens": 10240, "val_loss": 6.5}
)";

TEST(RunMetrics, ReadsEachSeries) {
  MetricsDir dir;
  RunMetrics m = read_run_metrics(dir.write(kRun));
  ASSERT_EQ(m.train.size(), 4u);
  EXPECT_EQ(m.train[2].step, 3);
  EXPECT_EQ(m.train[2].tokens, 6144);
  EXPECT_EQ(m.train[2].loss, 7.1);
  EXPECT_EQ(m.train[2].tokens_per_s, 10000);
  EXPECT_TRUE(std::isnan(m.train[3].loss));
  ASSERT_EQ(m.eval.size(), 3u);
  EXPECT_EQ(m.eval[0].step, 2);
  EXPECT_EQ(m.eval[0].tokens, 4096);
  EXPECT_EQ(m.eval[1].val_loss, 6.25);
  ASSERT_EQ(m.drops.size(), 2u);
  EXPECT_EQ(m.drops[0].drop_rate, 0.25);
  EXPECT_EQ(m.drops[1].step, 3);
  EXPECT_EQ(m.drops[1].drop_rate, 0.125);
}

TEST(RunMetrics, SummarizesFinalBestMedianAndDropRate) {
  MetricsDir dir;
  RunSummary s = summarize(read_run_metrics(dir.write(kRun)));
  EXPECT_EQ(s.steps, 4);
  EXPECT_EQ(s.final_val_loss, 6.5);
  EXPECT_EQ(s.best_val_loss, 6.25);
  EXPECT_EQ(s.median_tokens_per_s, 10500);  // of 9000, 10000, 11000, 30000
  EXPECT_EQ(s.last_drop_rate, 0.125);
}

TEST(RunMetrics, EmptyRunHasNoSummaryValues) {
  MetricsDir dir;
  RunSummary s = summarize(read_run_metrics(dir.write("\n")));
  EXPECT_EQ(s.steps, 0);
  EXPECT_FALSE(s.final_val_loss.has_value());
  EXPECT_FALSE(s.best_val_loss.has_value());
  EXPECT_FALSE(s.median_tokens_per_s.has_value());
  EXPECT_FALSE(s.last_drop_rate.has_value());
}

TEST(RunMetrics, ResumedRunKeepsTheLaterLines) {
  // Steps 1-3 logged, a crash, a resume from the step-2 checkpoint: step 3 is logged again.
  MetricsDir dir;
  RunMetrics m = read_run_metrics(dir.write(
      R"({"step": 2, "tokens": 20, "val_loss": 5}
{"step": 3, "tokens": 30, "val_loss": 4}
{"step": 3, "tokens": 30, "val_loss": 3.5}
{"step": 4, "tokens": 40, "val_loss": 3}
)"));
  ASSERT_EQ(m.eval.size(), 3u);
  EXPECT_EQ(m.eval[1].step, 3);
  EXPECT_EQ(m.eval[1].val_loss, 3.5);
  EXPECT_EQ(m.eval[2].step, 4);
}

TEST(RunMetrics, BadLinesNameFileAndLine) {
  MetricsDir dir;
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"{\"loss\": 1}\n", ":1: expected a numeric \"step\""},
      {"{}\n\n{\"step\": \"two\"}\n", ":1: expected a numeric \"step\""},
      {"{\"step\": 1, \"tokens\": 5, \"val_loss\": 1}\n{\"step\": \"two\"}\n",
       ":2: \"step\": expected a number or null, got a string \"two\""},
      {"{\"step\": 1, \"tokens\": 5, \"val_loss\": [1]}\n", ":1: \"val_loss\": expected a number or null, got an array"},
      {"{\"step\": 1, \"loss\": 2, \"tokens\": 5}\n", ":1: training line without \"tokens_per_s\""},
      {"{\"step\": 1, \"val_loss\": 2}\n", ":1: eval line without \"tokens\""},
  };
  for (const auto& [text, message] : cases) {
    SCOPED_TRACE(text);
    std::string path = dir.write(text);
    std::string err = error_of([&] { read_run_metrics(path); });
    EXPECT_NE(err.find(path + message), std::string::npos) << err;
  }
}

}  // namespace
}  // namespace mt
