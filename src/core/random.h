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

}  // namespace pi0
