// Inputs the fuzzers (fuzz/) found, committed under tests/regressions/<target>/, replayed through
// the same path the target drives, each with the error it must now give.
#include <gtest/gtest.h>

#include <fstream>
#include <iterator>

#include "bundle_util.h"
#include "pi0/error.h"
#include "policy/policy.h"
#include "serve/msgpack_numpy.h"
#include "test_util.h"

using namespace pi0;
using pi0::test::error_of;

namespace {

std::string regression(const std::string& rel) {
  const std::string path = std::string(PI0_SOURCE_DIR) + "/tests/regressions/" + rel;
  std::ifstream f(path, std::ios::binary);
  EXPECT_TRUE(f.good()) << "missing " << path;
  return {std::istreambuf_iterator<char>(f), {}};
}

}  // namespace

// fuzz_request: an ALOHA state with a finite value of 6.4e247 normalised to inf in float32, and
// the model would have answered with NaN actions. Now a request error naming the state entry.
TEST(FuzzRegressions, StateBeyondFloat32IsARequestError) {
  const Dict obs = serve::decode_dict(regression("fuzz_request/state_beyond_float32.msgpack"));
  auto p = Policy::load(test::bundle("tiny-pi05"), {.robot = "aloha", .backend = "reference"});
  const std::string e = error_of([&] { p->prepare(obs); });
  EXPECT_NE(e.find("state[7]"), std::string::npos) << e;
  EXPECT_NE(e.find("beyond float32's range"), std::string::npos) << e;
  EXPECT_NE(e.find("got 6.44"), std::string::npos) << e;
}
