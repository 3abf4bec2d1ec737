#include "serve/metrics.h"

#include <cstdio>

namespace pi0::serve {
namespace {

// Label values are quoted with \, " and newlines escaped (the text format's rule).
std::string label_value(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') { out += "\\n"; continue; }
    out += c;
  }
  return out;
}

std::string num(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::Ok: return "ok";
    case Outcome::Error: return "error";
    case Outcome::TooBig: return "too_big";
    case Outcome::Busy: return "busy";
    case Outcome::Pipelined: return "too_many_pipelined";
    case Outcome::TextFrame: return "text_frame";
    case Outcome::TimedOut: return "message_timeout";
    case Outcome::kCount: break;
  }
  return "?";
}

void ServerMetrics::observe_latency(double seconds) {
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (seconds <= kBuckets[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  latency_count_.fetch_add(1, std::memory_order_relaxed);
  latency_sum_us_.fetch_add(static_cast<uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

std::string ServerMetrics::render(const Gauges& g, const std::map<std::string, std::string>& info) const {
  std::string s;
  s += "# HELP pi0_requests_total Requests by outcome (the close code a refused one got).\n";
  s += "# TYPE pi0_requests_total counter\n";
  for (size_t i = 0; i < outcomes_.size(); ++i)
    s += std::string("pi0_requests_total{outcome=\"") + outcome_name(static_cast<Outcome>(i)) + "\"} " +
         std::to_string(outcomes_[i].load(std::memory_order_relaxed)) + "\n";
  s += "# HELP pi0_request_duration_seconds From a request's arrival to its reply being sent.\n";
  s += "# TYPE pi0_request_duration_seconds histogram\n";
  uint64_t cumulative = 0;
  for (size_t i = 0; i < kBuckets.size(); ++i) {
    cumulative += buckets_[i].load(std::memory_order_relaxed);
    s += "pi0_request_duration_seconds_bucket{le=\"" + num(kBuckets[i]) + "\"} " + std::to_string(cumulative) + "\n";
  }
  const uint64_t count = latency_count_.load(std::memory_order_relaxed);
  s += "pi0_request_duration_seconds_bucket{le=\"+Inf\"} " + std::to_string(count) + "\n";
  s += "pi0_request_duration_seconds_sum " + num(latency_sum_us_.load(std::memory_order_relaxed) / 1e6) + "\n";
  s += "pi0_request_duration_seconds_count " + std::to_string(count) + "\n";
  s += "# HELP pi0_queue_depth Requests waiting for the model.\n# TYPE pi0_queue_depth gauge\n";
  s += "pi0_queue_depth " + std::to_string(g.queue_depth) + "\n";
  s += "# HELP pi0_queue_capacity --max-queue.\n# TYPE pi0_queue_capacity gauge\n";
  s += "pi0_queue_capacity " + std::to_string(g.queue_capacity) + "\n";
  s += "# HELP pi0_connections Open WebSocket connections.\n# TYPE pi0_connections gauge\n";
  s += "pi0_connections " + std::to_string(g.connections) + "\n";
  s += "# HELP pi0_http_connections Connections still in their HTTP phase.\n# TYPE pi0_http_connections gauge\n";
  s += "pi0_http_connections " + std::to_string(g.http_connections) + "\n";
  s += "# HELP pi0_model_info The loaded model (value always 1).\n# TYPE pi0_model_info gauge\npi0_model_info{";
  bool first = true;
  for (const auto& [k, v] : info) {
    s += (first ? "" : ",") + k + "=\"" + label_value(v) + "\"";
    first = false;
  }
  s += "} 1\n";
  return s;
}

}  // namespace pi0::serve
