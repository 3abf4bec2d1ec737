// A resizable f32 buffer that hands out matrix views: the model's activations live in these,
// sized once per workspace so the hot loops never allocate.
#pragma once
#include <cstdint>
#include <vector>

#include "backend/ops.h"

namespace pi0 {

struct Buf {
  std::vector<float> data;
  void resize(int64_t n) { if (static_cast<int64_t>(data.size()) < n) data.assign(static_cast<size_t>(n), 0.f); }
  Mat mat(int64_t rows, int64_t cols) { resize(rows * cols); return {data.data(), rows, cols, cols}; }
};

}  // namespace pi0
