// The inference side of the server: a bounded FIFO of jobs and the worker threads that run them.
// Bounded so that a flood of requests is refused at the door instead of buffered without limit;
// FIFO so that robots are served in arrival order. Network threads only push and never wait.
#pragma once
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace pi0::serve {

class WorkQueue {
 public:
  using Job = std::function<void()>;

  // `capacity`: jobs waiting (not counting those running); `workers`: threads running jobs.
  WorkQueue(size_t capacity, int workers);
  ~WorkQueue();  // finish() then join
  WorkQueue(const WorkQueue&) = delete;
  WorkQueue& operator=(const WorkQueue&) = delete;

  // False (and the job is dropped) when `capacity` jobs are already waiting or after finish().
  bool try_push(Job job);
  // Stops taking jobs; the workers finish every queued job, then exit. Idempotent.
  void finish();
  void join();

  size_t waiting() const;
  size_t capacity() const { return capacity_; }

 private:
  void loop();
  static void release_free_heap();  // after the last running job when none wait
  const size_t capacity_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  bool finishing_ = false;
  int running_ = 0;  // jobs being run
  std::vector<std::thread> threads_;
};

}  // namespace pi0::serve
