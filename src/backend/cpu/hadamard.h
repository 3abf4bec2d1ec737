// Block Walsh–Hadamard transform for the int8 path's outlier handling. A rotation x' = x·H,
// W' = W·H leaves every product unchanged (H·Hᵀ = block·I, the factor folded into the scales) but
// spreads a channel outlier over a whole block, so per-token int8 steps no longer have to span
// one huge channel and thousands of small ones. No calibration data needed.
#pragma once
#include <cstdint>

namespace pi0::cpu {

// The block size used for rows of length K: the largest power of two dividing K, at most 2048
// (K = 2048 → 2048, 1152 → 128, 4304 → 16, 16384 → 2048). Larger blocks spread an outlier
// further; 2048 already takes it below the rounding step of 8-bit values at every π0 width, and
// each doubling costs one more pass over the row.
int hadamard_block(int64_t K);

// In place, unnormalised (entries ±1): each consecutive `block` values of x[0, n) become their
// Hadamard transform. n must be a multiple of block; block a power of two. AVX-512 or AVX2 when the CPU
// has it.
void fwht_blocks(float* x, int64_t n, int block);

// y = x transformed as fwht_blocks does (the same bits; y may be x), and max |y|: the int8
// quantiser's rotation, in registers, one pass over the row (two above 256 values) instead of a
// copy, a pass per two levels and an absmax pass. Requires AVX-512 and 16 ≤ block ≤ 2048.
float fwht_blocks_absmax(const float* x, float* y, int64_t n, int block);

}  // namespace pi0::cpu
