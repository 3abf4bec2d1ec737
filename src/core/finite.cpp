#include "core/finite.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>

#include "pi0/threads.h"

namespace pi0 {
namespace {

// The exponent bits all ones means inf or NaN, in every IEEE-style format.
template <class Bits>
bool special(Bits v, Bits exp_mask) { return (v & exp_mask) == exp_mask; }

bool non_finite_at(const void* d, DType t, int64_t i) {
  switch (t) {
    case DType::F32: { uint32_t b; std::memcpy(&b, static_cast<const uint32_t*>(d) + i, 4); return special<uint32_t>(b, 0x7f800000u); }
    case DType::BF16: return special<uint16_t>(static_cast<const uint16_t*>(d)[i], 0x7f80);
    case DType::F16: return special<uint16_t>(static_cast<const uint16_t*>(d)[i], 0x7c00);
    case DType::F64: return !std::isfinite(static_cast<const double*>(d)[i]);
    default: return false;
  }
}

}  // namespace

int64_t first_non_finite(const Tensor& t) {
  if (!is_float(t.dtype()) || t.numel() == 0) return -1;
  const void* d = t.raw();
  const DType dt = t.dtype();
  std::atomic<int64_t> first{-1};
  parallel_for(t.numel(), [&](int64_t b, int64_t e) {
    bool bad = false;
    for (int64_t i = b; i < e; ++i) bad |= non_finite_at(d, dt, i);  // branch-free: vectorises
    if (!bad) return;
    for (int64_t i = b; i < e; ++i)
      if (non_finite_at(d, dt, i)) {
        int64_t cur = first.load();
        while ((cur < 0 || i < cur) && !first.compare_exchange_weak(cur, i)) {}
        return;
      }
  }, 1 << 18);
  return first.load();
}

int64_t first_non_finite(const float* x, int64_t n) {
  bool bad = false;
  for (int64_t i = 0; i < n; ++i) bad |= !std::isfinite(x[i]);
  if (!bad) return -1;
  for (int64_t i = 0; i < n; ++i)
    if (!std::isfinite(x[i])) return i;
  return -1;
}

}  // namespace pi0
