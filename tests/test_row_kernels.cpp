// Row kernels of the cpu backend against a plain restatement of their contract, exactly: these
// kernels only select, compare and copy floats, so any difference is a bug (a wrong mask bit, a
// tail lane read or written out of bounds).
#include <gtest/gtest.h>

#include <algorithm>
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

// The float row kernels (whichever this CPU runs: AVX-512, AVX2 or plain C++; CTest's
// CpuBackend.Avx2Path reruns this capped at AVX2) against their formulas in double, on lengths
// that leave every kind of vector tail, with guard values that must stay untouched.
TEST(RowKernels, NormsAndSoftmaxExponentMatchTheirFormulas) {
  std::mt19937 rng(9);
  std::normal_distribution<float> val(0.3f, 2.f);
  for (int64_t n : {1, 7, 8, 9, 15, 16, 17, 72, 1152, 2051}) {
    SCOPED_TRACE(n);
    std::vector<float> x(static_cast<size_t>(n)), w(x), b(x);
    for (auto* v : {&x, &w, &b})
      for (auto& e : *v) e = val(rng);
    double s1 = 0, s2 = 0;
    for (float e : x) s1 += e, s2 += double{e} * e;
    const double mean = s1 / n, var = s2 / n - mean * mean, rms = std::sqrt(s2 / n + 1e-6);
    std::vector<float> y(static_cast<size_t>(n) + 1, 123.f);
    cpu::layer_norm_row(x.data(), n, w.data(), b.data(), 1e-6f, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], (x[i] - mean) / std::sqrt(var + 1e-6) * w[i] + b[i], 2e-5 * (1 + std::fabs(y[i]))) << i;
    EXPECT_EQ(y[n], 123.f);
    cpu::rms_norm_row(x.data(), n, w.data(), b.data(), 1e-6f, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], x[i] / rms * (1 + w[i]) + b[i], 2e-5 * (1 + std::fabs(y[i]))) << i;
    cpu::rms_norm_row(x.data(), n, w.data(), nullptr, 1e-6f, y.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_NEAR(y[i], x[i] / rms * (1 + w[i]), 2e-5 * (1 + std::fabs(y[i]))) << i;
    EXPECT_EQ(y[n], 123.f);
    // Softmax exponent: values far below the max (and masked ones) become exactly 0.
    std::vector<float> l = x;
    l.push_back(77.f);  // guard
    if (n > 2) l[1] = -2.3819763e38f;
    const float mx = *std::max_element(l.begin(), l.begin() + n);
    const float sum = cpu::exp_sum_row(l.data(), n, mx);
    double want_sum = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = (n > 2 && i == 1) ? -1e30 : double{x[i]} - mx;
      const double e = d < -87 ? 0 : std::exp(d);
      want_sum += e;
      ASSERT_NEAR(l[i], e, 2e-6 * (1 + e)) << i;
      if (d < -87) ASSERT_EQ(l[i], 0.f) << i;
    }
    EXPECT_NEAR(sum, want_sum, 1e-5 * want_sum);
    EXPECT_EQ(l[n], 77.f);
  }
}
