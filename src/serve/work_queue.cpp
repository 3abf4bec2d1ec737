#include "serve/work_queue.h"

#include <algorithm>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace pi0::serve {

WorkQueue::WorkQueue(size_t capacity, int workers) : capacity_(std::max<size_t>(1, capacity)) {
  for (int i = 0; i < std::max(1, workers); ++i) threads_.emplace_back([this] { loop(); });
}

WorkQueue::~WorkQueue() {
  finish();
  join();
}

bool WorkQueue::try_push(Job job) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (finishing_ || jobs_.size() >= capacity_) return false;
    jobs_.push_back(std::move(job));
  }
  cv_.notify_one();
  return true;
}

void WorkQueue::finish() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    finishing_ = true;
  }
  cv_.notify_all();
}

void WorkQueue::join() {
  for (auto& t : threads_)
    if (t.joinable()) t.join();
}

size_t WorkQueue::waiting() const {
  std::lock_guard<std::mutex> lk(mu_);
  return jobs_.size();
}

void WorkQueue::loop() {
  for (;;) {
    Job job;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [&] { return finishing_ || !jobs_.empty(); });
      if (jobs_.empty()) return;  // finishing and drained
      job = std::move(jobs_.front());
      jobs_.pop_front();
      ++running_;
    }
    try {
      job();  // jobs report their own errors to their client; this only keeps a worker alive
    } catch (...) {
    }
    job = nullptr;  // its captures (the request's frame) are freed before the heap is trimmed
    bool idle;
    {
      std::lock_guard<std::mutex> lk(mu_);
      idle = --running_ == 0 && jobs_.empty();
    }
    if (idle) release_free_heap();
  }
}

void WorkQueue::release_free_heap() {
#if defined(__GLIBC__)
  // A request's buffers (its frame, the decoded observation, a 1 MiB prompt) are freed when it is
  // answered, but glibc keeps freed heap in each thread's arena (and raises its mmap threshold after
  // a large free), so with --workers 4 four 1 MiB prompts left ~23 MB resident for good. Giving it
  // back once the server has nothing to do costs nothing a request waits for.
  malloc_trim(0);
#endif
}

}  // namespace pi0::serve
