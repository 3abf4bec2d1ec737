// Every golden case through the reference backend at the float32 tolerance (tests/data/golden/README.md, Tolerances).
#include "golden_util.h"

using namespace pi0;
using namespace pi0::test;

TEST(GoldenReference, TinyPi0) { check_golden_case("tiny_pi0", "reference", kF32); }
TEST(GoldenReference, TinyPi05) { check_golden_case("tiny_pi05", "reference", kF32); }
TEST(GoldenReference, TinyPi0Bf16Weights) { check_golden_case("tiny_pi0_bf16", "reference", kF32); }
