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
  // Three 224×224×3 uint8 images plus state need ~0.45 MB; 4 MiB leaves room for unresized
  // cameras and extra keys. Bigger messages are refused with a text frame and close code 1009.
  size_t max_message_bytes = size_t(4) << 20;
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
