// Run-folder checkpoint helpers: file naming, the `latest` pointer, resolving user paths, listing
// in step order and pruning (never the checkpoint `latest` names).
#include <gtest/gtest.h>

#include <fstream>

#include "mt/io/checkpoint.h"
#include "mt/io/checkpoint_dir.h"

namespace {
namespace fs = std::filesystem;

class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mt_ckpt_dir_test_XXXXXX").string();
    MT_CHECK(mkdtemp(tmpl.data()) != nullptr, "mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

template <typename Fn>
std::string error_of(Fn&& fn) {
  try {
    fn();
  } catch (const mt::Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an mt::Error";
  return "";
}

void commit_checkpoint(const fs::path& run, int64_t step) {
  fs::create_directories(mt::checkpoints_dir(run));
  mt::CheckpointWriter w(mt::checkpoint_path(run, step));
  w.write_int("step", step);
  w.commit();
}

std::string read_text(const fs::path& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

TEST(CheckpointDir, NamesFilesByZeroPaddedStep) {
  EXPECT_EQ(mt::checkpoint_path("runs/a", 42), fs::path("runs/a/checkpoints/step_00000042.h5"));
  EXPECT_EQ(mt::checkpoint_path("runs/a", 123456789), fs::path("runs/a/checkpoints/step_123456789.h5"));
  EXPECT_NE(error_of([] { mt::checkpoint_path("r", -1); }).find("-1"), std::string::npos);
}

TEST(CheckpointDir, LatestIsWrittenAfterCommitAndResolvedFromEveryEntryPoint) {
  TempDir tmp;
  const fs::path run = tmp.path() / "run";
  EXPECT_EQ(mt::find_latest_checkpoint(run), std::nullopt);  // fresh run: nothing to resume
  commit_checkpoint(run, 100);
  mt::write_latest(run, mt::checkpoint_path(run, 100));
  commit_checkpoint(run, 200);
  mt::write_latest(run, mt::checkpoint_path(run, 200));
  EXPECT_EQ(read_text(run / "checkpoints" / "latest"), "step_00000200.h5\n");
  EXPECT_FALSE(fs::exists(run / "checkpoints" / "latest.tmp"));

  const fs::path want = mt::checkpoint_path(run, 200);
  EXPECT_EQ(mt::find_latest_checkpoint(run), want);
  EXPECT_EQ(mt::resolve_checkpoint(run), want);
  EXPECT_EQ(mt::resolve_checkpoint(run / "checkpoints"), want);
  EXPECT_EQ(mt::resolve_checkpoint(mt::checkpoint_path(run, 100)), mt::checkpoint_path(run, 100));
  EXPECT_EQ(mt::CheckpointReader(mt::resolve_checkpoint(run)).read_int("step"), 200);
}

TEST(CheckpointDir, LatestPointingNowhereNamesBoth) {
  TempDir tmp;
  const fs::path run = tmp.path();
  fs::create_directories(run / "checkpoints");
  std::ofstream(run / "checkpoints" / "latest") << "step_00000099.h5\n";
  for (const fs::path& arg : {run, run / "checkpoints"}) {
    std::string msg = error_of([&] { mt::resolve_checkpoint(arg); });
    EXPECT_NE(msg.find((run / "checkpoints" / "latest").string()), std::string::npos) << msg;
    EXPECT_NE(msg.find((run / "checkpoints" / "step_00000099.h5").string()), std::string::npos) << msg;
  }
  std::string msg = error_of([&] { mt::find_latest_checkpoint(run); });
  EXPECT_NE(msg.find("step_00000099.h5"), std::string::npos) << msg;
}

TEST(CheckpointDir, ResolveNamesWhatIsMissing) {
  TempDir tmp;
  const fs::path nowhere = tmp.path() / "no_such_run";
  EXPECT_NE(error_of([&] { mt::resolve_checkpoint(nowhere); }).find(nowhere.string() + " does not exist"),
            std::string::npos);
  // A folder that is neither a run folder nor a checkpoints folder.
  std::string plain = error_of([&] { mt::resolve_checkpoint(tmp.path()); });
  EXPECT_NE(plain.find(tmp.path().string()), std::string::npos) << plain;
  EXPECT_NE(plain.find("checkpoints/"), std::string::npos) << plain;
  // A run folder whose checkpoints/ has no latest yet.
  fs::create_directories(tmp.path() / "checkpoints");
  std::string none = error_of([&] { mt::resolve_checkpoint(tmp.path()); });
  EXPECT_NE(none.find((tmp.path() / "checkpoints" / "latest").string()), std::string::npos) << none;
  // latest may only name a file that exists.
  std::string bad = error_of([&] { mt::write_latest(tmp.path(), mt::checkpoint_path(tmp.path(), 5)); });
  EXPECT_NE(bad.find("step_00000005.h5"), std::string::npos) << bad;
  EXPECT_FALSE(fs::exists(tmp.path() / "checkpoints" / "latest"));
}

TEST(CheckpointDir, ListsStepFilesInNumericOrderIgnoringOthers) {
  TempDir tmp;
  const fs::path ck = tmp.path() / "checkpoints";
  fs::create_directories(ck);
  for (const char* name : {"step_100000000.h5", "step_00000020.h5", "step_00000005.h5", "step_00000007.h5.tmp",
                           "step_abc.h5", "notes.txt", "latest"})
    std::ofstream(ck / name) << "x";
  std::vector<int64_t> steps;
  for (const mt::CheckpointFile& f : mt::list_checkpoints(tmp.path())) steps.push_back(f.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{5, 20, 100000000}));
  EXPECT_TRUE(mt::list_checkpoints(tmp.path() / "elsewhere").empty());
}

TEST(CheckpointDir, PruneKeepsNewestAndNeverTheLatest) {
  TempDir tmp;
  const fs::path run = tmp.path();
  for (int64_t s : {10, 20, 30, 40, 50, 60}) commit_checkpoint(run, s);
  auto remaining = [&] {
    std::vector<int64_t> steps;
    for (const mt::CheckpointFile& f : mt::list_checkpoints(run)) steps.push_back(f.step);
    return steps;
  };
  mt::write_latest(run, mt::checkpoint_path(run, 20));  // e.g. the user rolled back to step 20
  auto removed = mt::prune_checkpoints(run, 3);
  EXPECT_EQ(removed, (std::vector<fs::path>{mt::checkpoint_path(run, 10), mt::checkpoint_path(run, 30)}));
  EXPECT_EQ(remaining(), (std::vector<int64_t>{20, 40, 50, 60}));

  mt::write_latest(run, mt::checkpoint_path(run, 60));
  mt::prune_checkpoints(run, 2);
  EXPECT_EQ(remaining(), (std::vector<int64_t>{50, 60}));
  mt::prune_checkpoints(run, 5);
  EXPECT_EQ(remaining(), (std::vector<int64_t>{50, 60}));
  EXPECT_NE(error_of([&] { mt::prune_checkpoints(run, 0); }).find("keep >= 1"), std::string::npos);
}

TEST(CheckpointDir, ShardedFoldersAreListedResolvedAndPrunedWhole) {
  TempDir tmp;
  const fs::path run = tmp.path(), ck = run / "checkpoints";
  EXPECT_EQ(mt::sharded_checkpoint_path("runs/a", 42), fs::path("runs/a/checkpoints/step_00000042"));
  commit_checkpoint(run, 10);
  for (int64_t s : {20, 30}) {
    fs::create_directories(mt::sharded_checkpoint_path(run, s));
    std::ofstream(mt::sharded_checkpoint_path(run, s) / "index.h5") << "x";
  }
  fs::create_directories(ck / "step_00000040.tmp");  // an interrupted sharded write
  fs::create_directories(ck / "step_00000050.h5");    // a folder named like a file
  std::ofstream(ck / "step_00000060") << "x";          // a file named like a folder
  std::vector<int64_t> steps;
  for (const mt::CheckpointFile& f : mt::list_checkpoints(run)) steps.push_back(f.step);
  EXPECT_EQ(steps, (std::vector<int64_t>{10, 20, 30}));
  EXPECT_EQ(mt::resolve_checkpoint(mt::sharded_checkpoint_path(run, 20)), mt::sharded_checkpoint_path(run, 20));
  EXPECT_NE(error_of([&] { mt::write_latest(run, ck / "step_00000040.tmp"); }).find("does not exist"), std::string::npos);
  mt::write_latest(run, mt::sharded_checkpoint_path(run, 30));
  EXPECT_EQ(mt::resolve_checkpoint(run), mt::sharded_checkpoint_path(run, 30));
  EXPECT_EQ(mt::prune_checkpoints(run, 1),
            (std::vector<fs::path>{mt::checkpoint_path(run, 10), mt::sharded_checkpoint_path(run, 20)}));
  EXPECT_FALSE(fs::exists(mt::sharded_checkpoint_path(run, 20)));
  EXPECT_TRUE(fs::exists(ck / "step_00000040.tmp"));
}

}  // namespace
