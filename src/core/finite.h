// Finiteness checks: a NaN or inf weight, input or result must never become a robot command.
#pragma once
#include <cstdint>

#include "pi0/tensor.h"

namespace pi0 {

// Index of the first NaN/inf element of a float tensor (F32, BF16, F16, F64), or -1. Integer
// tensors are always finite. Scans in parallel: a full-size checkpoint is checked once at load.
int64_t first_non_finite(const Tensor& t);

// Index of the first NaN/inf among n floats, or -1 (on the calling thread).
int64_t first_non_finite(const float* x, int64_t n);

}  // namespace pi0
