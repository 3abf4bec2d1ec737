#include "pi0/threads.h"

#ifdef PI0_OPENMP
#include <omp.h>
#endif

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace pi0 {

#ifdef PI0_OPENMP
// With OpenMP the library and oneDNN (whose Debian build runs on OpenMP) share one thread team,
// so the two never compete for the cores, and the team's spin-wait keeps the many small ops of
// the denoise loop cheap to dispatch.
namespace {
int g_threads = 0;
}

void set_num_threads(int n) {
  g_threads = n > 0 ? n : static_cast<int>(std::thread::hardware_concurrency());
  omp_set_num_threads(std::max(1, g_threads));
}

int num_threads() {
  if (g_threads == 0) set_num_threads(0);
  return std::max(1, g_threads);
}

void parallel_for(int64_t n, RangeFn fn, int64_t grain) {
  if (n <= 0) return;
  const int parts = static_cast<int>(std::min<int64_t>(num_threads(), std::max<int64_t>(1, n / std::max<int64_t>(1, grain))));
  if (parts <= 1 || omp_in_parallel()) {
    fn(0, n);
    return;
  }
  std::exception_ptr error;
#pragma omp parallel num_threads(parts)
  {
    const int t = omp_get_thread_num(), nt = omp_get_num_threads();
    const int64_t b = n * t / nt, e = n * (t + 1) / nt;
    try {
      if (b < e) fn(b, e);
    } catch (...) {
#pragma omp critical
      if (!error) error = std::current_exception();
    }
  }
  if (error) std::rethrow_exception(error);
}

#else
namespace {

// Workers sleep on a condition variable and wake for each job generation. A job is split into
// one contiguous chunk per participant (static schedule: the model's ops are uniform).
class Pool {
 public:
  explicit Pool(int n) : size_(std::max(1, n)) {
    for (int i = 1; i < size_; ++i) workers_.emplace_back([this, i] { loop(i); });
  }
  ~Pool() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      stop_ = true;
      ++generation_;
    }
    cv_.notify_all();
    for (auto& t : workers_) t.join();
  }
  int size() const { return size_; }

  void run(int64_t n, const RangeFn& fn, int64_t grain) {
    int parts = static_cast<int>(std::min<int64_t>(size_, std::max<int64_t>(1, n / std::max<int64_t>(1, grain))));
    if (parts <= 1 || in_worker_) {
      fn(0, n);
      return;
    }
    std::lock_guard<std::mutex> job_lock(job_mu_);  // one job at a time from outside threads
    {
      std::lock_guard<std::mutex> lk(mu_);
      fn_ = &fn;
      n_ = n;
      parts_ = parts;
      pending_ = parts - 1;
      error_ = nullptr;
      ++generation_;
    }
    cv_.notify_all();
    in_worker_ = true;
    try {
      chunk(0, fn);
    } catch (...) {
      std::lock_guard<std::mutex> lk(mu_);
      if (!error_) error_ = std::current_exception();
    }
    in_worker_ = false;
    std::unique_lock<std::mutex> lk(mu_);
    done_cv_.wait(lk, [&] { return pending_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void chunk(int part, const RangeFn& fn) {
    int64_t b = n_ * part / parts_, e = n_ * (part + 1) / parts_;
    if (b < e) fn(b, e);
  }
  void loop(int index) {
    in_worker_ = true;
    uint64_t seen = 0;
    for (;;) {
      const RangeFn* fn;
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] { return generation_ != seen; });
        seen = generation_;
        if (stop_) return;
        if (index >= parts_) continue;
        fn = fn_;
      }
      try {
        chunk(index, *fn);
      } catch (...) {
        std::lock_guard<std::mutex> lk(mu_);
        if (!error_) error_ = std::current_exception();
      }
      {
        std::lock_guard<std::mutex> lk(mu_);
        if (--pending_ == 0) done_cv_.notify_one();
      }
    }
  }

  int size_;
  std::vector<std::thread> workers_;
  std::mutex mu_, job_mu_;
  std::condition_variable cv_, done_cv_;
  uint64_t generation_ = 0;
  bool stop_ = false;
  const RangeFn* fn_ = nullptr;
  int64_t n_ = 0;
  int parts_ = 0, pending_ = 0;
  std::exception_ptr error_;
  static thread_local bool in_worker_;
};
thread_local bool Pool::in_worker_ = false;

std::mutex g_pool_mu;
std::unique_ptr<Pool> g_pool;
int g_requested = 0;

Pool& pool() {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  if (!g_pool) {
    int n = g_requested > 0 ? g_requested : static_cast<int>(std::thread::hardware_concurrency());
    g_pool = std::make_unique<Pool>(std::max(1, n));
  }
  return *g_pool;
}

}  // namespace

void set_num_threads(int n) {
  std::lock_guard<std::mutex> lk(g_pool_mu);
  g_requested = n;
  g_pool.reset();
}

int num_threads() { return pool().size(); }

void parallel_for(int64_t n, RangeFn fn, int64_t grain) {
  if (n <= 0) return;
  pool().run(n, fn, grain);
}
#endif

}  // namespace pi0
