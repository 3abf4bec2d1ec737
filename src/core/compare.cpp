#include "core/compare.h"

#include <algorithm>
#include <cmath>

#include "pi0/error.h"

namespace pi0 {

Comparison compare_tensors(const Tensor& expected, const Tensor& got, const uint8_t* row_mask, int64_t row_size) {
  if (expected.numel() != got.numel())
    throw Error({.message = "cannot compare tensors of different sizes", .expected = shape_str(expected.shape()),
                 .got = shape_str(got.shape())});
  Comparison r;
  double se = 0, sg = 0, see = 0, sgg = 0, seg = 0;
  const int64_t n = expected.numel();
  for (int64_t i = 0; i < n; ++i) {
    if (row_mask && !row_mask[i / row_size]) continue;
    const double e = expected.get_f32(i), g = got.get_f32(i);
    se += e; sg += g; see += e * e; sgg += g * g; seg += e * g;
    r.max_abs = std::max(r.max_abs, std::abs(e - g));
    r.max_ref = std::max(r.max_ref, std::abs(e));
    if (std::isnan(g)) r.max_abs = INFINITY;
    r.compared++;
  }
  const double m = static_cast<double>(r.compared);
  const double cov = seg - se * sg / m, ve = see - se * se / m, vg = sgg - sg * sg / m;
  if (ve <= 0 && vg <= 0) r.pcc = r.max_abs == 0 ? 1.0 : 0.0;  // constant tensors: equal or not
  else r.pcc = (ve > 0 && vg > 0) ? cov / std::sqrt(ve * vg) : 0.0;
  return r;
}

}  // namespace pi0
