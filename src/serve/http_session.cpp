#include "serve/http_session.h"

#include "serve/ws_session.h"

namespace pi0::serve {

HttpSession::HttpSession(tcp::socket&& socket, std::shared_ptr<ServerContext> ctx)
    : stream_(std::move(socket)), ctx_(std::move(ctx)) {
  ctx_->http_sessions++;
  beast::error_code ec;
  auto ep = stream_.socket().remote_endpoint(ec);
  peer_ = ec ? std::string("?") : ep.address().to_string() + ":" + std::to_string(ep.port());
}

HttpSession::~HttpSession() { ctx_->http_sessions--; }

void HttpSession::run() {
  ctx_->add_http_session(shared_from_this());
  net::dispatch(stream_.get_executor(), [self = shared_from_this()] {
    self->parser_.emplace();
    self->parser_->header_limit(16 * 1024);
    self->parser_->body_limit(16 * 1024);
    self->stream_.expires_after(std::chrono::seconds(self->ctx_->opt.handshake_timeout_s));
    http::async_read(self->stream_, self->buffer_, *self->parser_,
                     beast::bind_front_handler(&HttpSession::on_read, self));
  });
}

void HttpSession::drain() {
  net::post(stream_.get_executor(), [self = shared_from_this()] {
    if (self->handed_over_) return;
    beast::error_code ignored;
    self->stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    self->stream_.socket().close(ignored);
  });
}

void HttpSession::on_read(beast::error_code ec, size_t) {
  if (ec && ctx_->draining) return;  // closed by drain(): nothing to report
  if (ec) {
    if (ec == beast::error::timeout)  // a half-open or stalled connection: say which limit closed it
      ctx_->log("connection from " + peer_ + " closed: no complete HTTP request within " +
                std::to_string(ctx_->opt.handshake_timeout_s) + " s (--handshake-timeout)");
    else if (ec != http::error::end_of_stream)
      ctx_->log("HTTP request from " + peer_ + " failed: " + ec.message());
    return;
  }
  handed_over_ = true;
  http::request<http::string_body> req = parser_->release();
  if (req.target() == "/healthz") return respond(http::status::ok, "OK\n");
  if (req.target() == "/metrics")
    return respond(http::status::ok, ctx_->metrics_text(), "text/plain; version=0.0.4; charset=utf-8");
  if (!websocket::is_upgrade(req))
    return respond(http::status::upgrade_required,
                   "This is a pi0.cpp policy server: connect with a WebSocket client (openpi protocol), "
                   "or GET /healthz.\n");
  if (ctx_->draining) return respond(http::status::service_unavailable, "The server is shutting down.\n");
  if (ctx_->ws_sessions >= ctx_->opt.max_connections) {
    ctx_->log("connection from " + peer_ + " refused: " + std::to_string(ctx_->opt.max_connections) + " already open");
    return respond(http::status::service_unavailable,
                   "Too many connections (" + std::to_string(ctx_->opt.max_connections) + ", --max-connections).\n");
  }
  std::make_shared<WsSession>(std::move(stream_), ctx_, peer_)->run(std::move(req));
}

void HttpSession::respond(http::status status, std::string body, const char* content_type) {
  auto res = std::make_shared<http::response<http::string_body>>(status, 11);
  res->set(http::field::server, "pi0.cpp");
  res->set(http::field::content_type, content_type);
  res->keep_alive(false);
  res->body() = std::move(body);
  res->prepare_payload();
  http::async_write(stream_, *res, [self = shared_from_this(), res](beast::error_code, size_t) {
    beast::error_code ignored;
    self->stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  });
}

}  // namespace pi0::serve
