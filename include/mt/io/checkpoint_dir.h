// Checkpoints in a run folder: `<run_dir>/checkpoints/step_XXXXXXXX.h5` (or the folder step_XXXXXXXX
// of a sharded checkpoint, Note [Sharded checkpoints]), and `checkpoints/latest`,
// a one-line text file naming the newest committed checkpoint, replaced (temp + fsync + rename)
// only after that checkpoint's commit. Resolving a user's path, listing and pruning.
#pragma once
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace mt {

struct CheckpointFile {
  int64_t step;
  std::filesystem::path path;
};

// <run_dir>/checkpoints
std::filesystem::path checkpoints_dir(const std::filesystem::path& run_dir);
// <run_dir>/checkpoints/step_XXXXXXXX.h5 (at least 8 digits, zero-padded).
std::filesystem::path checkpoint_path(const std::filesystem::path& run_dir, int64_t step);
// <run_dir>/checkpoints/step_XXXXXXXX, a sharded checkpoint's folder.
std::filesystem::path sharded_checkpoint_path(const std::filesystem::path& run_dir, int64_t step);

// Points <run_dir>/checkpoints/latest at `checkpoint`, which must be a file in that folder.
// Call it after CheckpointWriter::commit() returned.
void write_latest(const std::filesystem::path& run_dir, const std::filesystem::path& checkpoint);

// The checkpoint <run_dir>/checkpoints/latest names; nullopt when there is no `latest` (a fresh run).
// A `latest` naming a missing file is an error naming both.
std::optional<std::filesystem::path> find_latest_checkpoint(const std::filesystem::path& run_dir);

// Note [Resuming when latest is lost or damaged]
// checkpoint.resume: auto resumes from the newest step_*.h5 file or step_* folder that verifies (CheckpointSource reads
// and checks it whole). When that is the file `latest` names, nothing is said. Otherwise `latest`
// is missing, unreadable, names a missing, damaged or `.tmp` file, or names an older checkpoint than
// a newer valid one (a crash between a commit and the pointer update): with fallback on, the newest
// valid file is taken and a warning says what was wrong; with it off (checkpoint.fallback: false),
// the run is refused naming both facts. Starting afresh while step files exist is never done: it
// would overwrite them. When no step file verifies, the run is refused naming each file's fault.
enum class LatestFallback { kNewestValid, kRefuse };
struct ResumePoint {
  std::filesystem::path path;
  std::string warning;  // empty when `latest` named it
};
// nullopt: a fresh run (no step files and no `latest`).
std::optional<ResumePoint> find_resume_checkpoint(const std::filesystem::path& run_dir, LatestFallback fallback);

// What a user may pass to resume, evaluate or inspect: a checkpoint file, a checkpoints folder or a
// run folder (both follow `latest`). Errors name the path and what was missing.
std::filesystem::path resolve_checkpoint(const std::filesystem::path& path_or_run_dir);

// step_*.h5 files and step_* folders of <run_dir>/checkpoints, oldest step first.
std::vector<CheckpointFile> list_checkpoints(const std::filesystem::path& run_dir);

// Deletes all but the newest `keep` (>= 1) checkpoints, never the one `latest` names.
// Returns the deleted paths.
std::vector<std::filesystem::path> prune_checkpoints(const std::filesystem::path& run_dir, int keep);

}  // namespace mt
