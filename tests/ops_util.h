// Random row-major matrices (optionally with padded rows) and the comparison every backend op test
// makes against the reference backend.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/ops.h"
#include "core/compare.h"

namespace pi0::test {

// bf16 where oneDNN has a bf16 matmul (the precision the bf16 tolerances were set for), else auto
// (f32: PI0_CPU_ISA=avx2 or CPUs without AVX-512).
inline Precision bf16_if_available() { return cpu::dnnl_bf16_supported() ? Precision::BF16 : Precision::Auto; }

struct M {
  std::vector<float> v;
  Mat mat;
  M(int64_t r, int64_t c, std::mt19937& rng, float scale = 1.f, int64_t pad = 0) : v(static_cast<size_t>(r * (c + pad))) {
    std::normal_distribution<float> n(0.f, scale);
    for (auto& x : v) x = n(rng);
    mat = {v.data(), r, c, c + pad};
  }
  Tensor tensor() const {  // the logical [rows, cols] values (padding dropped)
    Tensor t = Tensor::zeros(DType::F32, {mat.rows, mat.cols});
    for (int64_t r = 0; r < mat.rows; ++r)
      for (int64_t c = 0; c < mat.cols; ++c) t.data_mut<float>()[r * mat.cols + c] = mat.row(r)[c];
    return t;
  }
};

inline void expect_match(const M& ref, const M& got, double min_pcc, double max_rel, const std::string& what) {
  Comparison c = compare_tensors(ref.tensor(), got.tensor());
  EXPECT_GE(c.pcc, min_pcc) << what;
  EXPECT_LE(c.rel(), max_rel) << what << " max_abs " << c.max_abs;
}


inline Tensor weight(int64_t out, int64_t in, std::mt19937& rng, DType dt) {
  Tensor w = Tensor::zeros(DType::F32, {out, in});
  std::normal_distribution<float> n(0.f, 1.f / std::sqrt(static_cast<float>(in)));
  for (int64_t i = 0; i < w.numel(); ++i) w.data_mut<float>()[i] = n(rng);
  return w.to(dt);
}

}  // namespace pi0::test
