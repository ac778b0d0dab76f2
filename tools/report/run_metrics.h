// RunMetrics: a run folder's metrics.jsonl read back (training, eval and MoE drop-rate lines) and
// summarised for `moetrain compare`. Each line is a JSON object (mt/io/json.h reads it); errors
// name file:line.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "mt/io/json.h"

namespace mt {

// One line of a JSON-lines file.
struct JsonLine {
  int line = 0;      // 1-based line number in the file
  JsonValue object;  // always an object

  const JsonValue* find(const std::string& key) const { return object.find(key); }
};

// Every non-blank line of `path`, each a JSON object; anything else throws mt::Error naming
// path:line:column.
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
