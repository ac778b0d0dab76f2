// WorkerPool: the queue, its workers' loop and the orderly stop (queued jobs still run).
#include "mt/data/worker_pool.h"

#include "mt/core/error.h"

namespace mt {

WorkerPool::WorkerPool(int threads) {
  MT_CHECK(threads >= 0, "WorkerPool: expected a thread count >= 0, got ", threads);
  workers_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) workers_.emplace_back([this] { work(); });
}

WorkerPool::~WorkerPool() {
  {
    const std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  for (std::thread& w : workers_) w.join();
}

void WorkerPool::enqueue(std::function<void()> job) {
  {
    const std::lock_guard lock(mutex_);
    jobs_.push_back(std::move(job));
  }
  ready_.notify_one();
}

void WorkerPool::work() {
  for (;;) {
    std::function<void()> job;
    {
      std::unique_lock lock(mutex_);
      ready_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
      if (jobs_.empty()) return;
      job = std::move(jobs_.front());
      jobs_.pop_front();
    }
    job();  // a packaged_task: an exception goes into its future
  }
}

}  // namespace mt
