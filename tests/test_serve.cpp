// The server's network-free parts: one request's processing (timing fields, error outcomes) and
// the bounded inference queue. The protocol itself is tested end to end by
// tests/serve/test_serve_protocol.py (CTest: serve_protocol).
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "pi0/error.h"
#include "serve/msgpack_numpy.h"
#include "serve/request.h"
#include "serve/work_queue.h"

using namespace pi0;
using namespace pi0::serve;

namespace {
Dict echo_policy(const Dict& obs) {
  Tensor a = Tensor::zeros(DType::F64, {2, 3});
  a.data_mut<double>()[0] = *obs.at("x").get_if<double>();
  return Dict{{"actions", a}};
}
const Dict& sub(const Dict& d, const std::string& k) { return *d.at(k).get_if<Dict>(); }
}  // namespace

TEST(ServeRequest, ReplyCarriesActionsAndOpenpiTimingFields) {
  std::string frame = encode(Dict{{"x", 4.5}});
  RequestOutcome first = process_request(frame, echo_policy, {}, std::nullopt);
  ASSERT_TRUE(first.ok) << first.payload;
  Dict r = decode_dict(first.payload);
  EXPECT_EQ(r.at("actions").get_if<Tensor>()->data<double>()[0], 4.5);
  EXPECT_TRUE(sub(r, "server_timing").at("infer_ms").is<double>());
  EXPECT_EQ(sub(r, "server_timing").count("prev_total_ms"), 0u);  // absent on the first reply
  EXPECT_TRUE(sub(r, "policy_timing").at("infer_ms").is<double>());  // filled in when the policy has none
  Dict second = decode_dict(process_request(frame, echo_policy, {}, 12.5).payload);
  EXPECT_EQ(*sub(second, "server_timing").at("prev_total_ms").get_if<double>(), 12.5);
}

TEST(ServeRequest, PolicyTimingFromThePolicyIsKept) {
  auto policy = [](const Dict& obs) {
    Dict r = echo_policy(obs);
    r["policy_timing"] = Dict{{"infer_ms", 99.0}};
    return r;
  };
  Dict r = decode_dict(process_request(encode(Dict{{"x", 1.0}}), policy, {}, std::nullopt).payload);
  EXPECT_EQ(*sub(r, "policy_timing").at("infer_ms").get_if<double>(), 99.0);
}

TEST(ServeRequest, FailuresBecomeErrorTextNeverExceptions) {
  RequestOutcome bad = process_request("\xc1", echo_policy, {}, std::nullopt);
  EXPECT_FALSE(bad.ok);
  EXPECT_EQ(bad.payload.rfind("invalid request: malformed msgpack", 0), 0u) << bad.payload;
  auto throws = [](const Dict&) -> Dict { throw Error(ErrorInfo{"missing key", "", "", "observation/state"}); };
  RequestOutcome e = process_request(encode(Dict{}), throws, {}, std::nullopt);
  EXPECT_FALSE(e.ok);
  EXPECT_EQ(e.payload, "request failed: field 'observation/state': missing key");
  auto std_throws = [](const Dict&) -> Dict { throw std::runtime_error("boom"); };
  EXPECT_EQ(process_request(encode(Dict{}), std_throws, {}, std::nullopt).payload, "request failed: boom");
  auto no_actions = [](const Dict&) { return Dict{{"y", 1}}; };
  EXPECT_EQ(process_request(encode(Dict{}), no_actions, {}, std::nullopt).payload,
            "request failed: the policy returned no 'actions'");
  DecodeLimits tight;
  tight.max_string = 4;
  RequestOutcome lim = process_request(encode(Dict{{"prompt", "too long"}}), echo_policy, tight, std::nullopt);
  EXPECT_NE(lim.payload.find("a string longer than 4 bytes"), std::string::npos) << lim.payload;
}

TEST(ServeWorkQueue, RefusesBeyondCapacityAndRunsInOrder) {
  std::mutex mu;
  std::vector<int> order;
  std::atomic<bool> release{false};
  std::atomic<bool> started{false};
  {
    WorkQueue q(2, 1);
    ASSERT_TRUE(q.try_push([&] {  // holds the only worker
      started = true;
      for (int i = 0; i < 2000 && !release; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }));
    for (int i = 0; i < 2000 && !started; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ASSERT_TRUE(started);
    EXPECT_TRUE(q.try_push([&] { std::lock_guard<std::mutex> l(mu); order.push_back(1); }));
    EXPECT_TRUE(q.try_push([&] { std::lock_guard<std::mutex> l(mu); order.push_back(2); }));
    EXPECT_FALSE(q.try_push([&] { std::lock_guard<std::mutex> l(mu); order.push_back(3); }));  // full
    EXPECT_EQ(q.waiting(), 2u);
    release = true;
    q.finish();  // queued jobs still run
    EXPECT_FALSE(q.try_push([] {}));
  }
  EXPECT_EQ(order, (std::vector<int>{1, 2}));
}

TEST(ServeWorkQueue, AThrowingJobDoesNotKillItsWorker) {
  std::atomic<int> ran{0};
  {
    WorkQueue q(4, 1);
    q.try_push([] { throw std::runtime_error("x"); });
    q.try_push([&] { ran++; });
  }
  EXPECT_EQ(ran, 1);
}
