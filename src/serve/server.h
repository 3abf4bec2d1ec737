// The policy server: openpi's WebSocket protocol (docs/model.md §7) on one port, with GET /healthz beside
// it. Network I/O runs on a small Asio thread pool; inference runs on WorkQueue workers, so a
// slow or vanished client blocks nobody and the model is never called from a network thread.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <map>
#include <string>

#include "core/value.h"
#include "serve/msgpack_numpy.h"
#include "serve/request.h"

namespace pi0::serve {

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8000;             // 0: any free port (see Server::port())
  // What real robots send unresized: ALOHA's four 720×1280×3 uint8 cameras are 11 MB, and depth
  // or more HD cameras add to that (openpi's server has no limit at all). Bigger messages are
  // refused with a text frame and close code 1009. Each message held costs its size: see
  // request_memory_bound().
  size_t max_message_bytes = size_t(64) << 20;
  size_t max_queue = 32;            // requests waiting for the model; beyond: refused (1013)
  int workers = 1;                  // concurrent policy calls (the model already uses every core)
  int io_threads = 1;               // network threads
  size_t max_connections = 64;      // open WebSocket sessions; beyond: HTTP 503 at the handshake
  size_t max_pipelined = 2;         // requests a client may send ahead of its reply
  // A connection must finish its HTTP request (the upgrade or /healthz) within this, and a
  // WebSocket closing handshake too: a TCP connect that never speaks, or a request sent a byte a
  // minute, holds a socket only this long. Robots connect once, so a short bound costs nothing.
  int handshake_timeout_s = 10;
  int idle_timeout_s = 120;         // no traffic at all, not even a pong to our pings: drop
  // A message must arrive in full within this once its first bytes have: a client that announces a
  // frame and then trickles it (a byte a second) would otherwise hold a connection slot forever.
  // 11 MB (four HD cameras) over a 10 Mbit/s link takes ~9 s.
  int message_timeout_s = 30;
  int shutdown_timeout_s = 30;      // graceful shutdown waits this long for requests in flight
  bool handle_signals = false;      // SIGINT/SIGTERM start a graceful shutdown
  bool log = true;                  // one line per connection event and request (log callback)
  std::map<std::string, std::string> model_info;  // labels of pi0_model_info on GET /metrics
  DecodeLimits limits;
};

// The most request bytes the server can hold at once with these options: messages waiting in the
// queue (max_queue), each worker's message and its decoded observation (2 × workers), and on
// every connection the messages sent ahead of their reply plus the one being read
// (max_connections × (max_pipelined + 1)), each up to max_message_bytes.
uint64_t request_memory_bound(const ServerOptions& o);

class Server {
 public:
  // Binds and listens immediately (so port() is valid and errors surface here as pi0::Error).
  Server(ServerOptions opt, InferFn infer, Dict metadata);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  uint16_t port() const;
  // Where clients connect: "ws://127.0.0.1:8000", "ws://[::1]:8000" (IPv6 in brackets).
  std::string url() const;
  // Serves until shutdown() (or a signal, with handle_signals) and every connection has closed.
  void run();
  // Thread-safe and signal-free: stop accepting, let the requests in flight finish and be
  // answered, close every connection (code 1001), then run() returns.
  void shutdown();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace pi0::serve
