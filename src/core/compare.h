// How two tensors agree, the way the golden cases are judged: Pearson correlation over all
// elements and the largest absolute difference against the largest expected magnitude. Used by
// replay/compare in the tool and by the tests alike.
#pragma once
#include <cstdint>

#include "pi0/tensor.h"

namespace pi0 {

struct Comparison {
  double pcc = 0, max_abs = 0, max_ref = 0;
  int64_t compared = 0;  // elements compared
  double rel() const { return max_ref > 0 ? max_abs / max_ref : max_abs; }
};

// Pearson correlation and max |got − expected| over all elements (or only where `row_mask`,
// one flag per leading row group of `row_size` elements, is set). A NaN in `got` makes max_abs
// infinite, so it can never pass a tolerance.
Comparison compare_tensors(const Tensor& expected, const Tensor& got, const uint8_t* row_mask = nullptr,
                           int64_t row_size = 0);

}  // namespace pi0
