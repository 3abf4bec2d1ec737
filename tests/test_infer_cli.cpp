// pi0 infer's flags: what a user types wrong is an error that says so, and odd but valid numbers
// are numbers.
#include <gtest/gtest.h>

#include "bundle_util.h"
#include "test_util.h"

namespace {

using pi0::test::CliRun;

std::string base() {
  const std::string s = std::string(PI0_SOURCE_DIR) + "/assets/samples";
  return "infer --backend reference --checkpoint " + pi0::test::bundle("tiny-pi0") + " --robot libero --image image=" + s +
         "/base.png --image wrist_image=" + s + "/wrist.png --prompt 'pick up' --seed 1 ";
}

}  // namespace

TEST(InferCli, SameCameraTwiceUnderTwoNamesIsAnError) {
  const std::string s = std::string(PI0_SOURCE_DIR) + "/assets/samples";
  CliRun r = pi0::test::run_cli(base() + "--image base_0_rgb=" + s + "/wrist.png --state 0,0,0,0,0,0,0,0");
  EXPECT_EQ(r.code, 1) << r.out;
  EXPECT_NE(r.out.find("camera base_0_rgb given twice"), std::string::npos) << r.out;
}

TEST(InferCli, SubnormalStateValuesAreNumbers) {
  CliRun r = pi0::test::run_cli(base() + "--state 1e-320,0,0,0,0,0,0,0 --json");
  EXPECT_EQ(r.code, 0) << r.out;
  CliRun big = pi0::test::run_cli(base() + "--state 1e999,0,0,0,0,0,0,0");
  EXPECT_EQ(big.code, 1) << big.out;
  EXPECT_NE(big.out.find("--state"), std::string::npos) << big.out;
}

// `--prompt ""` is an empty prompt, as an openpi client sending "" has it; no --prompt and no default
// prompt is an error pointing at --prompt (not at serve's --default-prompt, which infer lacks).
TEST(InferCli, EmptyPromptIsAPromptAndMissingOnePointsToTheFlag) {
  std::string cmd = base();
  const std::string with = "--prompt 'pick up' ";
  cmd.erase(cmd.find(with), with.size());
  CliRun empty = pi0::test::run_cli(cmd + "--prompt '' --state 0,0,0,0,0,0,0,0 --json");
  EXPECT_EQ(empty.code, 0) << empty.out;
  EXPECT_NE(empty.out.find("\"prompt\": \"\""), std::string::npos) << empty.out;
  CliRun none = pi0::test::run_cli(cmd + "--state 0,0,0,0,0,0,0,0");
  EXPECT_EQ(none.code, 1) << none.out;
  EXPECT_NE(none.out.find("pi0 infer: --prompt"), std::string::npos) << none.out;
}

TEST(InferCli, PortOutOfRangeSaysTheRange) {
  CliRun r = pi0::test::run_cli("serve --checkpoint " + pi0::test::bundle("tiny-pi0") + " --robot libero --port 70000");
  EXPECT_NE(r.code, 0) << r.out;
  EXPECT_NE(r.out.find("--port: Value 70000 not in range 0 to 65535"), std::string::npos) << r.out;
}
