// RunMetrics: a run folder's metrics.jsonl read back (training, eval and MoE drop-rate lines) and
// summarised for `moetrain compare`. The JSON-lines reader takes flat objects whose values are
// numbers, strings or null (what MetricsLog writes) and names file:line on anything else.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace mt {

// One value of a flat JSON object.
struct JsonScalar {
  enum class Kind { kNumber, kString, kNull };
  Kind kind = Kind::kNull;
  double number = 0.0;
  std::string text;
  bool operator==(const JsonScalar&) const = default;
};

// One line of a JSON-lines file: its keys in file order.
struct JsonLine {
  int line = 0;  // 1-based line number in the file
  std::vector<std::pair<std::string, JsonScalar>> fields;

  const JsonScalar* find(const std::string& key) const;  // nullptr when absent
};

// Parses one flat JSON object ({"a": 1, "b": "x", "c": null}). Throws mt::Error saying what was
// expected and at which column; the caller adds the file and line.
std::vector<std::pair<std::string, JsonScalar>> parse_flat_json_object(const std::string& text);

// Every non-blank line of `path`; a malformed line throws mt::Error naming path:line.
std::vector<JsonLine> read_json_lines(const std::string& path);

struct TrainPoint {
  int64_t step = 0;
  double tokens = 0;
  double loss = 0;
  double tokens_per_s = 0;
};
struct EvalPoint {
  int64_t step = 0;
  double tokens = 0;
  double val_loss = 0;
};
struct DropPoint {
  int64_t step = 0;
  double drop_rate = 0;  // fraction of tokens dropped, averaged over MoE layers
};

// The series of one run, each in step order. A line may feed several series (a line with both
// loss and drop_rate is a training point and a drop-rate point); sample lines feed none.
struct RunMetrics {
  std::vector<TrainPoint> train;  // lines with "loss"
  std::vector<EvalPoint> eval;    // lines with "val_loss"
  std::vector<DropPoint> drops;   // lines with "drop_rate"
};

// Reads <path> (a metrics.jsonl). Errors name path:line: a malformed line, a line without a
// numeric "step", or a training / eval line missing "tokens" (or, for training, "tokens_per_s").
RunMetrics read_run_metrics(const std::string& path);

struct RunSummary {
  int64_t steps = 0;                          // last training step (0 = none logged)
  std::optional<double> final_val_loss;       // the last eval line's
  std::optional<double> best_val_loss;        // lowest finite val loss
  std::optional<double> median_tokens_per_s;  // over training lines
  std::optional<double> last_drop_rate;       // the last reported drop rate
};

RunSummary summarize(const RunMetrics& metrics);

}  // namespace mt
