// Counter-based random numbers: value i of stream s under seed k is a pure function of (k, s, i),
// so parallel generation is reproducible whatever the thread count.
#pragma once
#include <cmath>
#include <cstdint>

namespace pi0 {

inline uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// Uniform in (0, 1), never 0 (safe for log).
inline double uniform_at(uint64_t seed, uint64_t stream, uint64_t i) {
  uint64_t h = splitmix64(seed ^ splitmix64(stream * 0x632be59bd9b4e019ull + i));
  return (static_cast<double>(h >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

// Standard normal by Box-Muller on two independent uniforms.
inline float normal_at(uint64_t seed, uint64_t stream, uint64_t i) {
  double u1 = uniform_at(seed, stream, 2 * i), u2 = uniform_at(seed, stream, 2 * i + 1);
  return static_cast<float>(std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2));
}

// A cheap bell-shaped value with mean 0 and variance 1 (Irwin–Hall: four 16-bit uniforms from
// one hash). For random checkpoint weights, where billions of values are drawn and exact
// Gaussian tails do not matter; sampling noise uses normal_at.
inline float approx_normal_at(uint64_t seed, uint64_t stream, uint64_t i) {
  const uint64_t h = splitmix64(seed ^ splitmix64(stream * 0x632be59bd9b4e019ull + i));
  const float sum = static_cast<float>((h & 0xffff) + ((h >> 16) & 0xffff) + ((h >> 32) & 0xffff) + (h >> 48));
  return (sum * (1.0f / 65536.0f) - 2.0f) * 1.7320508f;
}

}  // namespace pi0
