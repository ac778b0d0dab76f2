// WorkerPool: results come back through their futures, jobs run on the pool's threads (or, with
// zero threads, on the caller's), exceptions reach the caller, and queued jobs finish on destruction.
#include "mt/data/worker_pool.h"

#include <gtest/gtest.h>

#include <atomic>
#include <set>
#include <stdexcept>

namespace mt {
namespace {

TEST(WorkerPool, RunsEveryJobOnItsThreadsAndReturnsEachResult) {
  WorkerPool pool(3);
  std::vector<std::future<std::pair<int, std::thread::id>>> results;
  for (int i = 0; i < 64; ++i) results.push_back(pool.submit([i] { return std::pair{i * i, std::this_thread::get_id()}; }));
  std::set<std::thread::id> threads;
  for (int i = 0; i < 64; ++i) {
    const auto [value, thread] = results[static_cast<size_t>(i)].get();
    EXPECT_EQ(value, i * i);
    threads.insert(thread);
  }
  EXPECT_EQ(threads.count(std::this_thread::get_id()), 0u);
  EXPECT_LE(threads.size(), 3u);  // no thread per job
}

TEST(WorkerPool, ZeroThreadsRunsAJobOnTheCallerWhenItsResultIsAsked) {
  WorkerPool pool(0);
  std::atomic<bool> ran = false;
  auto result = pool.submit([&] {
    ran = true;
    return std::this_thread::get_id();
  });
  EXPECT_FALSE(ran);
  EXPECT_EQ(result.get(), std::this_thread::get_id());
  EXPECT_TRUE(ran);
}

TEST(WorkerPool, AJobsExceptionReachesTheCallerAndThePoolGoesOn) {
  WorkerPool pool(2);
  auto bad = pool.submit([]() -> int { throw std::runtime_error("chunk 7 is not UTF-8"); });
  EXPECT_THROW(
      {
        try {
          bad.get();
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "chunk 7 is not UTF-8");
          throw;
        }
      },
      std::runtime_error);
  EXPECT_EQ(pool.submit([] { return 5; }).get(), 5);
}

TEST(WorkerPool, QueuedJobsFinishBeforeThePoolIsGone) {
  std::atomic<int> done = 0;
  {
    WorkerPool pool(2);
    for (int i = 0; i < 50; ++i) pool.submit([&] { ++done; });  // futures dropped: nothing waits
  }
  EXPECT_EQ(done, 50);
}

}  // namespace
}  // namespace mt
