// What every connection of one server shares: options, the policy, the encoded metadata frame,
// the inference queue, counters, and the registry used to drain connections at shutdown.
#pragma once
#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/escape.h"
#include "pi0/log.h"
#include "serve/metrics.h"
#include "serve/request.h"
#include "serve/server.h"
#include "serve/work_queue.h"

namespace pi0::serve {

class WsSession;
class HttpSession;

struct ServerContext {
  ServerContext(ServerOptions o, InferFn f, std::string meta)
      : opt(std::move(o)), infer(std::move(f)), metadata_frame(std::move(meta)), queue(opt.max_queue, opt.workers) {}

  const ServerOptions opt;
  const InferFn infer;
  const std::string metadata_frame;  // msgpack(metadata), sent on every connect
  WorkQueue queue;
  ServerMetrics metrics;
  std::atomic<bool> draining{false};
  std::atomic<size_t> ws_sessions{0};    // open WebSocket sessions (WsSession lifetimes)
  std::atomic<size_t> http_sessions{0};  // connections still in their HTTP phase
  std::atomic<uint64_t> next_id{1};

  // Sessions register so that shutdown can reach them; expired entries are pruned on insert.
  void add_session(const std::shared_ptr<WsSession>& s) { add(sessions_, s); }
  std::vector<std::shared_ptr<WsSession>> live_sessions() { return live(sessions_); }
  // Connections still in their HTTP phase (a silent TCP connect, say): closed at once at shutdown
  // instead of holding it up for the handshake timeout.
  void add_http_session(const std::shared_ptr<HttpSession>& s) { add(http_, s); }
  std::vector<std::shared_ptr<HttpSession>> live_http_sessions() { return live(http_); }

  std::string metrics_text() const {
    return metrics.render({.queue_depth = queue.waiting(), .queue_capacity = queue.capacity(),
                           .connections = ws_sessions.load(), .http_connections = http_sessions.load()},
                          opt.model_info);
  }

  void log(const std::string& line) const {
    // Lines quote what clients sent (keys, prompts): escaped, so none can forge a log line or
    // drive the operator's terminal.
    if (opt.log) log_message(LogLevel::Info, "pi0 serve: " + escape_control(line));
  }

 private:
  template <class T>
  void add(std::vector<std::weak_ptr<T>>& v, const std::shared_ptr<T>& s) {
    std::lock_guard<std::mutex> lk(mu_);
    std::erase_if(v, [](const std::weak_ptr<T>& w) { return w.expired(); });
    v.push_back(s);
  }
  template <class T>
  std::vector<std::shared_ptr<T>> live(std::vector<std::weak_ptr<T>>& v) {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::shared_ptr<T>> out;
    for (auto& w : v)
      if (auto s = w.lock()) out.push_back(std::move(s));
    return out;
  }
  std::mutex mu_;
  std::vector<std::weak_ptr<WsSession>> sessions_;
  std::vector<std::weak_ptr<HttpSession>> http_;
};

}  // namespace pi0::serve
