// RunMetrics: metrics.jsonl read line by line with the tree's JSON reader, and the series `compare`
// needs (training throughput, eval loss, MoE drop rate) pulled out of it.
#include "run_metrics.h"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>

#include "mt/core/error.h"

namespace mt {
namespace {

bool blank(const std::string& line) {
  return std::all_of(line.begin(), line.end(), [](char c) { return c == ' ' || c == '\t' || c == '\r'; });
}

// Note [Resumed runs repeat steps]: a run resumed from a checkpoint appends the steps after that
// checkpoint again, so a series may step backwards. The later lines win: points at or after the
// new step are dropped before it is added, leaving each series in increasing step order.
template <typename Point>
void push_in_step_order(std::vector<Point>& series, const Point& p) {
  while (!series.empty() && series.back().step >= p.step) series.pop_back();
  series.push_back(p);
}

}  // namespace

std::vector<JsonLine> read_json_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  MT_CHECK(in.good(), "cannot open ", path, ": ", std::strerror(errno));
  std::vector<JsonLine> lines;
  std::string text;
  int number = 0;
  while (std::getline(in, text)) {
    ++number;
    if (blank(text)) continue;
    JsonLine line;
    line.line = number;
    try {
      line.object = parse_json(text);
    } catch (const JsonError& e) {
      MT_FAIL(path, ":", number, ":", e.column(), ": malformed JSON line: ", e.reason());
    }
    MT_CHECK(line.object.kind == JsonValue::Kind::kObject, path, ":", number, ": expected a JSON object ({...}), got ",
             json_kind_name(line.object.kind));
    lines.push_back(std::move(line));
  }
  MT_CHECK(!in.bad(), "error reading ", path);
  return lines;
}

RunMetrics read_run_metrics(const std::string& path) {
  RunMetrics m;
  for (const JsonLine& line : read_json_lines(path)) {
    const std::string where = str_cat(path, ":", line.line);
    // MetricsLog writes a non-finite number as null.
    auto number = [&](const char* key) -> std::optional<double> {
      const JsonValue* v = line.find(key);
      if (!v) return std::nullopt;
      if (v->kind == JsonValue::Kind::kNull) return std::numeric_limits<double>::quiet_NaN();
      MT_CHECK(v->kind == JsonValue::Kind::kNumber, where, ": \"", key, "\": expected a number or null, got ",
               json_kind_name(v->kind), v->kind == JsonValue::Kind::kString ? " " + json_quote(v->text) : "");
      return v->number;
    };
    auto required = [&](const char* key, const char* kind) {
      std::optional<double> v = number(key);
      MT_CHECK(v.has_value(), where, ": ", kind, " line without \"", key, "\"");
      return *v;
    };
    std::optional<double> step = number("step");
    MT_CHECK(step.has_value() && std::isfinite(*step), where, ": expected a numeric \"step\" in every line");
    const auto s = static_cast<int64_t>(*step);
    if (std::optional<double> loss = number("loss"))
      push_in_step_order(m.train,
                         TrainPoint{s, required("tokens", "training"), *loss, required("tokens_per_s", "training")});
    if (std::optional<double> vl = number("val_loss"))
      push_in_step_order(m.eval, EvalPoint{s, required("tokens", "eval"), *vl});
    if (std::optional<double> dr = number("drop_rate")) push_in_step_order(m.drops, DropPoint{s, *dr});
  }
  return m;
}

RunSummary summarize(const RunMetrics& m) {
  RunSummary r;
  if (!m.train.empty()) {
    r.steps = m.train.back().step;
    std::vector<double> tps;
    for (const TrainPoint& p : m.train)
      if (std::isfinite(p.tokens_per_s)) tps.push_back(p.tokens_per_s);
    if (!tps.empty()) {
      std::sort(tps.begin(), tps.end());
      size_t n = tps.size();
      r.median_tokens_per_s = n % 2 ? tps[n / 2] : 0.5 * (tps[n / 2 - 1] + tps[n / 2]);
    }
  }
  if (!m.eval.empty()) {
    r.final_val_loss = m.eval.back().val_loss;
    for (const EvalPoint& p : m.eval)
      if (std::isfinite(p.val_loss) && (!r.best_val_loss || p.val_loss < *r.best_val_loss))
        r.best_val_loss = p.val_loss;
  }
  if (!m.drops.empty()) r.last_drop_rate = m.drops.back().drop_rate;
  return r;
}

}  // namespace mt
