// One threading policy for the whole library: a fixed pool sized by set_num_threads()
// (the CLI's --threads; default: every core). Heavy ops split their work with parallel_for.
#pragma once
#include <cstdint>
#include <functional>

namespace pi0 {

void set_num_threads(int n);  // n <= 0 means all cores
int num_threads();

// Calls fn(begin, end) on disjoint chunks that cover [0, n), using every pool thread and the
// caller. Chunks are contiguous and at least `grain` long. Runs inline when called from inside
// another parallel_for (no nested oversubscription). Exceptions from fn are rethrown in the caller.
void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn, int64_t grain = 1);

}  // namespace pi0
