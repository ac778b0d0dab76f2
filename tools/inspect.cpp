// `moetrain inspect CKPT`: verifies a checkpoint (a .h5 file, a sharded checkpoint folder, a checkpoints
// folder or a run folder),
// then prints its metadata and a table of its tensors with element counts and totals, and checks the
// model tensors against the model the stored recipe describes.
// `--meta KEY` prints one metadata value alone (e.g. the resolved recipe) for scripts.
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <map>
#include <memory>
#include <string>

#include "commands.h"
#include "mt/io/checkpoint_source.h"
#include "mt/io/checkpoint_dir.h"
#include "mt/train/checkpoint_model.h"

namespace mt::cli {
namespace {

struct InspectOptions {
  std::string checkpoint;
  std::string meta_key;
};

std::string with_commas(int64_t n) {
  std::string s = std::to_string(n);
  for (int i = static_cast<int>(s.size()) - 3; i > (n < 0 ? 1 : 0); i -= 3) s.insert(static_cast<size_t>(i), ",");
  return s;
}

std::string shortest(double v) {
  char buf[32];
  auto res = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, res.ptr);
}

std::string human_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (b >= 1024 && u < 4) b /= 1024, ++u;
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", b, units[u]);
  return buf;
}

// One line per value; long or multi-line strings are summarised.
std::string meta_summary(const CheckpointReader& r, const std::string& key) {
  switch (r.meta_kind(key)) {
    case MetaKind::kInt: return std::to_string(r.read_int(key));
    case MetaKind::kDouble: return shortest(r.read_double(key));
    case MetaKind::kString: {
      const std::string& s = r.read_string(key);
      if (s.size() <= 60 && s.find('\n') == std::string::npos) return "\"" + s + "\"";
      size_t lines = static_cast<size_t>(std::count(s.begin(), s.end(), '\n')) + (s.empty() || s.back() == '\n' ? 0 : 1);
      return "string, " + std::to_string(lines) + " lines, " + std::to_string(s.size()) + " bytes (--meta " + key +
             " prints it)";
    }
    case MetaKind::kU64s: {
      const std::vector<uint64_t>& v = r.read_u64s(key);
      std::string out = "u64[" + std::to_string(v.size()) + "]";
      for (size_t i = 0; i < v.size() && i < 4; ++i) out += (i ? ", " : ": ") + std::to_string(v[i]);
      return v.size() > 4 ? out + ", ..." : out;
    }
  }
  return "?";
}

void print_meta_value(const CheckpointReader& r, const std::string& key) {
  switch (r.meta_kind(key)) {
    case MetaKind::kString: std::fputs(r.read_string(key).c_str(), stdout); break;
    case MetaKind::kU64s:
      for (uint64_t v : r.read_u64s(key)) std::printf("%llu\n", static_cast<unsigned long long>(v));
      break;
    default: std::printf("%s\n", meta_summary(r, key).c_str());
  }
}

void run_inspect(const InspectOptions& opt) {
  const CheckpointSource r(resolve_checkpoint(opt.checkpoint));  // verifies the whole file, or every part
  const CheckpointReader& m = r.meta();
  if (!opt.meta_key.empty()) {
    MT_CHECK(m.has_meta(opt.meta_key), "checkpoint ", r.path().string(), " has no metadata '", opt.meta_key,
             "' (it has ", m.meta_keys().size(), " keys; run without --meta to list them)");
    print_meta_value(m, opt.meta_key);
    return;
  }
  std::printf("checkpoint  %s\n", r.path().string().c_str());
  std::printf("verified    format version %lld, %zu tensors, %zu metadata entries, all checksums match\n",
              static_cast<long long>(r.format_version()), r.names().size(), m.meta_keys().size());
  if (r.sharded()) std::printf("sharded     %d parts and an index (Note [Sharded checkpoints])\n", r.parts());

  if (!m.meta_keys().empty()) {
    size_t w = 0;
    for (const std::string& k : m.meta_keys()) w = std::max(w, k.size());
    std::printf("\nmetadata\n");
    for (const std::string& k : m.meta_keys())
      std::printf("  %-*s  %s\n", static_cast<int>(w), k.c_str(), meta_summary(m, k).c_str());
  }

  std::vector<std::string> shapes, counts;
  size_t wn = 5, wd = 5, ws = 5, wc = 8;
  int64_t total = 0;
  double bytes = 0;
  std::map<std::string, int64_t> by_prefix;  // first dotted component -> elements
  for (const std::string& n : r.names()) {
    const TensorInfo& info = r.info(n);
    shapes.push_back(format_shape(info.shape));
    counts.push_back(with_commas(info.numel()));
    total += info.numel();
    bytes += static_cast<double>(info.numel()) * static_cast<double>(dtype_size(info.dtype));
    by_prefix[n.substr(0, n.find('.'))] += info.numel();
    wn = std::max(wn, n.size());
    wd = std::max(wd, std::string(dtype_name(info.dtype)).size());
    ws = std::max(ws, shapes.back().size());
    wc = std::max(wc, counts.back().size());
  }
  wc = std::max(wc, with_commas(total).size());
  std::printf("\ntensors\n  %-*s  %-*s  %-*s  %*s\n", static_cast<int>(wn), "name", static_cast<int>(wd), "dtype",
              static_cast<int>(ws), "shape", static_cast<int>(wc), "elements");
  for (size_t i = 0; i < r.names().size(); ++i) {
    const std::string& n = r.names()[i];
    std::printf("  %-*s  %-*s  %-*s  %*s\n", static_cast<int>(wn), n.c_str(), static_cast<int>(wd),
                dtype_name(r.info(n).dtype), static_cast<int>(ws), shapes[i].c_str(), static_cast<int>(wc),
                counts[i].c_str());
  }
  const int label = static_cast<int>(wn + wd + ws + 4);
  if (by_prefix.size() > 1)
    for (const auto& [prefix, n] : by_prefix)
      std::printf("  %-*s  %*s\n", label, (prefix + ".*").c_str(), static_cast<int>(wc), with_commas(n).c_str());
  std::printf("  %-*s  %*s  (%s)\n", label, "total", static_cast<int>(wc), with_commas(total).c_str(),
              human_bytes(bytes).c_str());
  if (!m.has_meta("recipe")) return;
  // The tensors against the model the stored recipe describes: a mismatch is an error after the listing.
  const std::vector<std::string> mismatches = checkpoint_recipe_mismatches(r);
  if (mismatches.empty()) {
    std::printf("\nrecipe      the model tensors fit the stored recipe's model\n");
    return;
  }
  if (mismatches.size() == 1 && mismatches[0].rfind("not compared", 0) == 0) {
    std::printf("\nrecipe      %s\n", mismatches[0].c_str());
    return;
  }
  std::string list;
  for (const std::string& m : mismatches) list += "\n  " + m;
  MT_FAIL("checkpoint ", r.path().string(), ": ", mismatches.size(),
          " model tensor(s) do not fit the model its stored recipe describes:", list);
}

}  // namespace

void add_inspect_command(CLI::App& app) {
  auto opt = std::make_shared<InspectOptions>();
  CLI::App* cmd = app.add_subcommand("inspect", "Verify a checkpoint and print its metadata and tensors");
  cmd->add_option("checkpoint", opt->checkpoint, "Checkpoint .h5 file, sharded checkpoint folder, checkpoints folder or run folder (follows latest)")
      ->required();
  cmd->add_option("--meta", opt->meta_key, "Print only this metadata value, in full (e.g. --meta recipe)");
  cmd->callback([opt] { run_inspect(*opt); });
}

}  // namespace mt::cli
