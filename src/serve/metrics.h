// Counters an operator scrapes from GET /metrics (Prometheus text format 0.0.4): requests by
// outcome, request latency, queue depth, connections, and what model is loaded. Lock-free: every
// connection thread updates them with relaxed atomics.
#pragma once
#include <array>
#include <atomic>
#include <cstdint>
#include <map>
#include <string>

namespace pi0::serve {

enum class Outcome {
  Ok,            // a reply with actions
  Error,         // 1011: invalid request or policy error
  TooBig,        // 1009: over --max-message-bytes
  Busy,          // 1013: --max-queue full
  Pipelined,     // 1008: more than --max-pipelined ahead
  TextFrame,     // 1003
  TimedOut,      // dropped: the message did not arrive within --message-timeout
  kCount
};
const char* outcome_name(Outcome o);

class ServerMetrics {
 public:
  static constexpr std::array<double, 10> kBuckets = {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};  // seconds

  void count(Outcome o) { outcomes_[static_cast<size_t>(o)].fetch_add(1, std::memory_order_relaxed); }
  // A request answered (ok or error) `seconds` after it was received.
  void observe_latency(double seconds);

  struct Gauges {
    size_t queue_depth = 0, queue_capacity = 0, connections = 0, http_connections = 0;
  };
  // The whole exposition; `info` becomes the labels of pi0_model_info (checkpoint, variant, ...).
  std::string render(const Gauges& g, const std::map<std::string, std::string>& info) const;

 private:
  std::array<std::atomic<uint64_t>, static_cast<size_t>(Outcome::kCount)> outcomes_{};
  std::array<std::atomic<uint64_t>, kBuckets.size()> buckets_{};  // non-cumulative; summed at render
  std::atomic<uint64_t> latency_count_{0};
  std::atomic<uint64_t> latency_sum_us_{0};
};

}  // namespace pi0::serve
