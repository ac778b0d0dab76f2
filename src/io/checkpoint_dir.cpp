// Run-folder conventions for checkpoints: file naming, the `latest` pointer, resolving a user's path,
// listing and pruning old checkpoints.
#include "mt/io/checkpoint_dir.h"

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "mt/core/error.h"
#include "mt/io/checkpoint_fs.h"
#include "mt/io/checkpoint_source.h"

namespace mt {
namespace fs = std::filesystem;

namespace {

constexpr const char* kLatest = "latest";

// The checkpoint `<ckdir>/latest` names; the file must exist.
fs::path read_latest(const fs::path& ckdir) {
  const fs::path latest = ckdir / kLatest;
  std::ifstream in(latest);
  MT_CHECK(in.good(), "cannot read ", latest.string());
  std::stringstream ss;
  ss << in.rdbuf();
  std::string name = ss.str();
  const char* ws = " \t\r\n";
  name.erase(name.find_last_not_of(ws) + 1);
  name.erase(0, name.find_first_not_of(ws));
  MT_CHECK(!name.empty(), latest.string(), " is empty (expected the name of a checkpoint file)");
  const fs::path target = ckdir / name;
  MT_CHECK(fs::exists(target), latest.string(), " names ", target.string(), ", which does not exist");
  return target;
}

// step number of "step_<digits>.h5" (a file) or "step_<digits>" (a sharded folder), or -1.
int64_t parse_step(const std::string& filename) {
  const std::string prefix = "step_";
  const std::string suffix = filename.size() > 3 && filename.compare(filename.size() - 3, 3, ".h5") == 0 ? ".h5" : "";
  if (filename.size() <= prefix.size() + suffix.size() || filename.rfind(prefix, 0) != 0) return -1;
  const std::string digits = filename.substr(prefix.size(), filename.size() - prefix.size() - suffix.size());
  if (digits.size() > 18 || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return -1;
  return std::stoll(digits);
}

}  // namespace

fs::path checkpoints_dir(const fs::path& run_dir) { return run_dir / "checkpoints"; }

fs::path checkpoint_path(const fs::path& run_dir, int64_t step) {
  MT_CHECK(step >= 0, "checkpoint step must be >= 0, got ", step);
  char name[40];
  std::snprintf(name, sizeof name, "step_%08lld.h5", static_cast<long long>(step));
  return checkpoints_dir(run_dir) / name;
}

fs::path sharded_checkpoint_path(const fs::path& run_dir, int64_t step) {
  return checkpoint_path(run_dir, step).replace_extension();
}

void write_latest(const fs::path& run_dir, const fs::path& checkpoint) {
  const fs::path ckdir = checkpoints_dir(run_dir);
  const fs::path target = ckdir / checkpoint.filename();
  MT_CHECK(fs::is_regular_file(target) || is_sharded_checkpoint(target), "cannot point ", (ckdir / kLatest).string(), " at ", checkpoint.string(),
           ": ", target.string(), " does not exist");
  write_file_durably(ckdir / kLatest, checkpoint.filename().string() + "\n");
}

std::optional<fs::path> find_latest_checkpoint(const fs::path& run_dir) {
  const fs::path ckdir = checkpoints_dir(run_dir);
  if (!fs::exists(ckdir / kLatest)) return std::nullopt;
  return read_latest(ckdir);
}

std::optional<ResumePoint> find_resume_checkpoint(const fs::path& run_dir, LatestFallback fallback) {
  const fs::path ckdir = checkpoints_dir(run_dir);
  const fs::path latest = ckdir / kLatest;
  const std::vector<CheckpointFile> files = list_checkpoints(run_dir);
  const bool has_latest = fs::exists(latest);
  if (files.empty() && !has_latest) return std::nullopt;
  // What `latest` says, or why it cannot be followed.
  std::optional<fs::path> named;
  std::string latest_fault;
  if (!has_latest) {
    latest_fault = latest.string() + " is missing";
  } else {
    try {
      named = read_latest(ckdir);
      if (parse_step(named->filename().string()) < 0) {
        latest_fault = latest.string() + " names " + named->string() + ", which is not a committed step_*.h5 file or step_* folder";
        named.reset();
      }
    } catch (const Error& e) {
      latest_fault = e.what();
    }
  }
  // The newest step file that verifies; the faults of newer ones.
  std::optional<fs::path> newest;
  std::string faults;
  for (auto it = files.rbegin(); it != files.rend() && !newest; ++it) {
    try {
      CheckpointSource verify(it->path);
      newest = it->path;
    } catch (const Error& e) {
      faults += str_cat("\n  ", e.what());
      if (named && named->filename() == it->path.filename())
        latest_fault = latest.string() + " names " + named->string() + ", which is damaged";
    }
  }
  MT_CHECK(newest, "cannot resume from ", ckdir.string(), ": ",
           files.empty() ? latest_fault + " and there is no step_*.h5 file" : "no step_*.h5 file verifies:" + faults,
           "\nmove the folder away to start afresh, or set checkpoint.resume");
  if (latest_fault.empty() && named && named->filename() == newest->filename()) return ResumePoint{*newest, ""};
  if (latest_fault.empty())
    latest_fault = latest.string() + " names " + named->string() + ", older than " + newest->string();
  MT_CHECK(fallback == LatestFallback::kNewestValid, "cannot resume from ", ckdir.string(), ": ", latest_fault,
           ", and the newest checkpoint that verifies is ", newest->string(),
           " (checkpoint.fallback is false: set it true to resume from there, or checkpoint.resume to a file)");
  return ResumePoint{*newest, latest_fault + "; resuming from " + newest->string() +
                                  ", the newest checkpoint that verifies (checkpoint.fallback)"};
}

fs::path resolve_checkpoint(const fs::path& path) {
  MT_CHECK(fs::exists(path), "checkpoint path ", path.string(), " does not exist");
  if (fs::is_regular_file(path) || is_sharded_checkpoint(path)) return path;
  MT_CHECK(fs::is_directory(path), path.string(), " is neither a checkpoint file nor a folder");
  fs::path ckdir;
  if (fs::is_directory(checkpoints_dir(path)))
    ckdir = checkpoints_dir(path);
  else if (fs::exists(path / kLatest) || path.filename() == "checkpoints")
    ckdir = path;
  else
    MT_FAIL(path.string(), " is not a checkpoint file, a sharded checkpoint folder (it has no ", kShardedIndexFile,
            "), a checkpoints folder or a run folder (it has no checkpoints/)");
  MT_CHECK(fs::exists(ckdir / kLatest), "no checkpoint in ", path.string(), ": ", (ckdir / kLatest).string(),
           " does not exist");
  return read_latest(ckdir);
}

std::vector<CheckpointFile> list_checkpoints(const fs::path& run_dir) {
  std::vector<CheckpointFile> out;
  const fs::path ckdir = checkpoints_dir(run_dir);
  if (!fs::is_directory(ckdir)) return out;
  for (const fs::directory_entry& e : fs::directory_iterator(ckdir)) {
    if (!e.is_regular_file() && !e.is_directory()) continue;
    if (e.is_directory() != (e.path().extension() != ".h5")) continue;  // files step_*.h5, folders step_*
    int64_t step = parse_step(e.path().filename().string());
    if (step >= 0) out.push_back({step, e.path()});
  }
  std::sort(out.begin(), out.end(), [](const CheckpointFile& a, const CheckpointFile& b) { return a.step < b.step; });
  return out;
}

std::vector<fs::path> prune_checkpoints(const fs::path& run_dir, int keep) {
  MT_CHECK(keep >= 1, "prune_checkpoints: expected keep >= 1, got ", keep);
  const std::optional<fs::path> latest = find_latest_checkpoint(run_dir);
  const std::vector<CheckpointFile> all = list_checkpoints(run_dir);
  std::vector<fs::path> removed;
  for (size_t i = 0; i + static_cast<size_t>(keep) < all.size(); ++i) {
    const fs::path& p = all[i].path;
    if (latest && p.filename() == latest->filename()) continue;
    std::error_code ec;
    fs::remove_all(p, ec);
    MT_CHECK(!ec, "cannot delete old checkpoint ", p.string(), ": ", ec.message());
    removed.push_back(p);
  }
  return removed;
}

}  // namespace mt
