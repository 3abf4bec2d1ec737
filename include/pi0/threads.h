// One threading policy for the whole library: a fixed pool sized by set_num_threads()
// (the CLI's --threads; default: every core). Heavy ops split their work with parallel_for.
#pragma once
#include <cstdint>
#include <memory>
#include <type_traits>

namespace pi0 {

void set_num_threads(int n);  // n <= 0 means all cores
int num_threads();

// A borrowed callable fn(begin, end): two pointers, never a heap allocation (a std::function
// holding a lambda with a few captures allocates on every call, and the denoise loop makes
// hundreds of parallel_for calls per step). Valid only while the callable it was made from lives.
class RangeFn {
 public:
  template <class F, class = std::enable_if_t<!std::is_same_v<std::decay_t<F>, RangeFn>>>
  RangeFn(F&& f)  // NOLINT(google-explicit-constructor): lambdas convert where parallel_for is called
      : obj_(const_cast<void*>(static_cast<const void*>(std::addressof(f)))),
        call_([](void* o, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(o))(b, e); }) {}
  void operator()(int64_t b, int64_t e) const { call_(obj_, b, e); }

 private:
  void* obj_;
  void (*call_)(void*, int64_t, int64_t);
};

// Calls fn(begin, end) on disjoint chunks that cover [0, n), using every pool thread and the
// caller. Chunks are contiguous and at least `grain` long. Runs inline when called from inside
// another parallel_for (no nested oversubscription). Exceptions from fn are rethrown in the caller.
void parallel_for(int64_t n, RangeFn fn, int64_t grain = 1);

}  // namespace pi0
