// Every golden case through the fast cpu backend in each precision: bf16 (f32 where oneDNN has no
// bf16 path) at the bf16 tolerance of tests/data/golden/README.md (Tolerances), f32 at its float32
// tolerance, int8 at issue 13's bar (PCC ≥ 0.99, max-abs ≤ 0.1·max|expected| on every expected tensor).
#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/int8_linear.h"
#include "golden_util.h"
#include "ops_util.h"

using namespace pi0;
using namespace pi0::test;

namespace {

const BackendOptions kBf16{.precision = bf16_if_available()}, kF32Opt{.precision = Precision::F32},
    kInt8Opt{.precision = Precision::Int8, .int8_min_rows = 2};  // every layer of the tiny models in int8

void check_int8(const std::string& dir) {
  if (!cpu::int8_support().ok) GTEST_SKIP() << "no int8 kernel for this CPU";
  check_golden_case(dir, "cpu", kInt8, kInt8Opt);
}

}  // namespace

TEST(GoldenCpu, TinyPi0) { check_golden_case("tiny_pi0", "cpu", kBF16, kBf16); }
TEST(GoldenCpu, TinyPi05) { check_golden_case("tiny_pi05", "cpu", kBF16, kBf16); }
TEST(GoldenCpu, TinyPi0Bf16Weights) { check_golden_case("tiny_pi0_bf16", "cpu", kBF16, kBf16); }

TEST(GoldenCpuF32, TinyPi0) { check_golden_case("tiny_pi0", "cpu", kF32, kF32Opt); }
TEST(GoldenCpuF32, TinyPi05) { check_golden_case("tiny_pi05", "cpu", kF32, kF32Opt); }
TEST(GoldenCpuF32, TinyPi0Bf16Weights) { check_golden_case("tiny_pi0_bf16", "cpu", kF32, kF32Opt); }

TEST(GoldenCpuInt8, TinyPi0) { check_int8("tiny_pi0"); }
TEST(GoldenCpuInt8, TinyPi05) { check_int8("tiny_pi05"); }
TEST(GoldenCpuInt8, TinyPi0Bf16Weights) { check_int8("tiny_pi0_bf16"); }
