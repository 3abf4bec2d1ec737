// --precision / --precisions on the CLI: the chosen type is named at load, compare pairs
// precisions with backends, and impossible requests are errors that say why.
#include <gtest/gtest.h>

#include "backend/cpu/dnnl_matmul.h"
#include "backend/cpu/int8_linear.h"
#include "golden_util.h"
#include "test_util.h"

using namespace pi0;
using namespace pi0::test;

TEST(CliPrecision, CompareTwoPrecisionsOfOneBackend) {
  if (!cpu::int8_support().ok) GTEST_SKIP() << "no int8 kernel for this CPU";
  const std::string dir = golden("tiny_pi0");
  CliRun r = run_cli("compare --checkpoint " + dir + " --case " + dir + "/case.safetensors --backends reference,cpu --precisions f32,int8");
  ASSERT_EQ(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("reference:f32 (baseline) vs cpu:int8"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("cpu backend, precision int8"), std::string::npos) << r.out;  // the load line
  EXPECT_NE(r.out.find("velocity_t1"), std::string::npos) << r.out;
}

TEST(CliPrecision, ImpossibleRequestsAreErrors) {
  const std::string dir = golden("tiny_pi0");
  CliRun r = run_cli("replay --backend reference --precision int8 --checkpoint " + dir + " --case " + dir +
                     "/case.safetensors --out /dev/null --quiet");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("reference backend computes in f32 only"), std::string::npos) << r.out;
  r = run_cli("compare --checkpoint " + dir + " --case " + dir + "/case.safetensors --precisions int8");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("give exactly two precisions"), std::string::npos) << r.out;
  r = run_cli("replay --precision fp16 --checkpoint " + dir + " --case " + dir + "/case.safetensors --out /dev/null");
  EXPECT_NE(r.code, 0);
  EXPECT_NE(r.out.find("unknown precision"), std::string::npos) << r.out;
}
