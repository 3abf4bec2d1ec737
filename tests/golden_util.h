// Shared by the golden tests of every backend: run a golden case and check each expected
// tensor at a tolerance (tests/data/golden/README.md, Tolerances).
#pragma once
#include <gtest/gtest.h>

#include <string>

#include "golden_dir.h"
#include "io/safetensors.h"
#include "model/pi0_model.h"
#include "model/replay.h"

namespace pi0::test {

struct Tolerance {
  double min_pcc, max_rel;
};
inline constexpr Tolerance kF32{0.99999, 1e-4};
inline constexpr Tolerance kBF16{0.999, 5e-2};
inline constexpr Tolerance kInt8{0.99, 0.1};  // issue 13's acceptance bar for int8

// Runs `dir`/case.safetensors through `backend` and checks every expect.* tensor.
inline void check_golden_case(const std::string& dir, const std::string& backend, Tolerance tol,
                              const BackendOptions& options = {}) {
  auto model = Pi0Model::load(golden(dir), backend, options);
  auto cs = SafeTensorsFile::open(golden(dir + "/case.safetensors"));
  auto got = replay_case(*model, *cs);
  const Tensor mask = cs->tensor("expect.prefix_pad_mask");
  const int64_t P = mask.dim(1);
  int checked = 0;
  for (const auto& e : cs->entries()) {
    if (e.name.rfind("expect.", 0) != 0) continue;
    const std::string name = e.name.substr(7);
    SCOPED_TRACE(dir + " / " + name);
    ASSERT_TRUE(got.count(name)) << "model produced no " << name;
    const Tensor exp = cs->tensor(e), out = got[name];
    ASSERT_EQ(exp.shape(), out.shape());
    checked++;
    if (name == "prefix_pad_mask") {
      for (int64_t i = 0; i < exp.numel(); ++i) ASSERT_EQ(exp.get_f32(i), out.get_f32(i)) << "at " << i;
      continue;
    }
    if (name == "prefix_positions") {  // exact on valid tokens
      for (int64_t i = 0; i < exp.numel(); ++i)
        if (mask.data<uint8_t>()[i]) ASSERT_EQ(exp.get_f32(i), out.get_f32(i)) << "at " << i;
      continue;
    }
    // prefix_out rows of padded tokens follow a convention (uniform softmax) that influences nothing.
    const bool rows_masked = name == "prefix_out";
    Comparison c = compare_tensors(exp, out, rows_masked ? mask.data<uint8_t>() : nullptr,
                                   rows_masked ? exp.numel() / (exp.dim(0) * P) : 0);
    EXPECT_GE(c.pcc, tol.min_pcc) << "max_abs " << c.max_abs << " max_ref " << c.max_ref;
    EXPECT_LE(c.rel(), tol.max_rel) << "pcc " << c.pcc;
  }
  EXPECT_GE(checked, 12);
}

}  // namespace pi0::test
