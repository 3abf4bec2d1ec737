// A new TCP connection's HTTP phase: read one request, then either answer GET /healthz with
// 200 "OK\n" (openpi's process_request health check), GET /metrics with the Prometheus text
// exposition (serve/metrics.h), hand a WebSocket upgrade to WsSession,
// or answer 426 / 503. Every HTTP-phase read has a deadline so a silent socket cannot linger.
#pragma once
#include <memory>
#include <optional>
#include <string>

#include "serve/beast.h"
#include "serve/context.h"

namespace pi0::serve {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(tcp::socket&& socket, std::shared_ptr<ServerContext> ctx);
  ~HttpSession();
  void run();
  // Shutdown: a connection still waiting for its HTTP request is closed now (thread-safe).
  void drain();

 private:
  void on_read(beast::error_code ec, size_t);
  void respond(http::status status, std::string body, const char* content_type = "text/plain; charset=utf-8");

  beast::tcp_stream stream_;
  std::shared_ptr<ServerContext> ctx_;
  std::string peer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  bool handed_over_ = false;  // the socket now belongs to a WsSession (or a response is being sent)
};

}  // namespace pi0::serve
