// Row kernels of the cpu backend against a plain restatement of their contract, exactly: these
// kernels only select, compare and copy floats, so any difference is a bug (a wrong mask bit, a
// tail lane read or written out of bounds).
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/kernels.h"

using namespace pi0;

TEST(RowKernels, MaskMaxRowMasksExactlyTheForbiddenKeys) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> val(-50.f, 50.f);
  const float mv = -2.3819763e38f;
  for (int64_t n : {1, 2, 15, 16, 17, 31, 33, 64, 70, 867}) {
    for (int variant = 0; variant < 4; ++variant) {  // both arrays, only validity, only groups, none
      std::vector<uint8_t> kv(static_cast<size_t>(n));
      std::vector<int32_t> kg(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) {
        kv[j] = rng() % 4 != 0;
        kg[j] = static_cast<int32_t>(rng() % 3);
      }
      const uint8_t* pv = variant == 0 || variant == 1 ? kv.data() : nullptr;
      const int32_t* pg = variant == 0 || variant == 2 ? kg.data() : nullptr;
      for (int32_t qg : {-1, 0, 1, 2}) {
        // One guard value on each side: the kernel must not touch them.
        std::vector<float> row(static_cast<size_t>(n) + 2);
        for (auto& x : row) x = val(rng);
        std::vector<float> want = row;
        float want_max = -INFINITY;
        for (int64_t j = 0; j < n; ++j) {
          const bool ok = (!pv || pv[j]) && (pg ? pg[j] : 0) <= qg;
          if (!ok) want[j + 1] = mv;
          want_max = std::max(want_max, want[j + 1]);
        }
        const float got_max = cpu::mask_max_row(row.data() + 1, n, pv, pg, qg, mv);
        const std::string what = "n=" + std::to_string(n) + " variant=" + std::to_string(variant) + " qg=" + std::to_string(qg);
        EXPECT_EQ(got_max, want_max) << what;
        EXPECT_EQ(row, want) << what;
      }
    }
  }
}
