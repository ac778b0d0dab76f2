// WorkerPool: a fixed set of long-lived threads running submitted jobs, each result a std::future.
// Long-lived on purpose: glibc gives each new thread a malloc arena, so a thread per job (std::async)
// left a fresh arena's pages behind again and again and peak memory grew with the number of jobs.
// With threads == 0 a job runs on the thread that asks for its result (deferred), as on one core.
#pragma once
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

namespace mt {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();  // finishes the queued jobs, then joins
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  template <class F>
  auto submit(F job) -> std::future<decltype(job())> {
    using R = decltype(job());
    if (workers_.empty()) return std::async(std::launch::deferred, std::move(job));
    auto task = std::make_shared<std::packaged_task<R()>>(std::move(job));
    std::future<R> result = task->get_future();
    enqueue([task] { (*task)(); });
    return result;
  }

 private:
  void enqueue(std::function<void()> job);
  void work();

  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::function<void()>> jobs_;
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace mt
