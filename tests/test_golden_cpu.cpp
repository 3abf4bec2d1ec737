// Every golden case through the fast cpu backend (bf16 weights and activations) at the bf16
// tolerance of the tests/data/golden/README.md, Tolerances.
#include "golden_util.h"

using namespace pi0;
using namespace pi0::test;

TEST(GoldenCpu, TinyPi0) { check_golden_case("tiny_pi0", "cpu", kBF16); }
TEST(GoldenCpu, TinyPi05) { check_golden_case("tiny_pi05", "cpu", kBF16); }
TEST(GoldenCpu, TinyPi0Bf16Weights) { check_golden_case("tiny_pi0_bf16", "cpu", kBF16); }
