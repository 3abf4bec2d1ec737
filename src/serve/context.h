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
#include "serve/request.h"
#include "serve/server.h"
#include "serve/work_queue.h"

namespace pi0::serve {

class WsSession;

struct ServerContext {
  ServerContext(ServerOptions o, InferFn f, std::string meta)
      : opt(std::move(o)), infer(std::move(f)), metadata_frame(std::move(meta)), queue(opt.max_queue, opt.workers) {}

  const ServerOptions opt;
  const InferFn infer;
  const std::string metadata_frame;  // msgpack(metadata), sent on every connect
  WorkQueue queue;
  std::atomic<bool> draining{false};
  std::atomic<size_t> ws_sessions{0};    // open WebSocket sessions (WsSession lifetimes)
  std::atomic<size_t> http_sessions{0};  // connections still in their HTTP phase
  std::atomic<uint64_t> next_id{1};

  // Sessions register so that shutdown can reach them; expired entries are pruned on insert.
  void add_session(const std::shared_ptr<WsSession>& s) {
    std::lock_guard<std::mutex> lk(mu_);
    std::erase_if(sessions_, [](const std::weak_ptr<WsSession>& w) { return w.expired(); });
    sessions_.push_back(s);
  }
  std::vector<std::shared_ptr<WsSession>> live_sessions() {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::shared_ptr<WsSession>> out;
    for (auto& w : sessions_)
      if (auto s = w.lock()) out.push_back(std::move(s));
    return out;
  }

  void log(const std::string& line) const {
    // Lines quote what clients sent (keys, prompts): escaped, so none can forge a log line or
    // drive the operator's terminal.
    if (opt.log) log_message(LogLevel::Info, "pi0 serve: " + escape_control(line));
  }

 private:
  std::mutex mu_;
  std::vector<std::weak_ptr<WsSession>> sessions_;
};

}  // namespace pi0::serve
