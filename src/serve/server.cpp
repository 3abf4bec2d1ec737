// Listener, signals and the shutdown sequence; connections live in http_session / ws_session.
#include "serve/server.h"

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <thread>

#include "pi0/error.h"
#include "serve/beast.h"
#include "serve/context.h"
#include "serve/http_session.h"
#include "serve/ws_session.h"

namespace pi0::serve {

uint64_t request_memory_bound(const ServerOptions& o) {
  // Saturating: the options come from the command line and may be absurd.
  constexpr uint64_t kMax = UINT64_MAX;
  const auto mul = [](uint64_t a, uint64_t b) { return a != 0 && b > kMax / a ? kMax : a * b; };
  const auto add = [](uint64_t a, uint64_t b) { return b > kMax - a ? kMax : a + b; };
  const uint64_t per_connection = add(o.max_pipelined, 1);
  const uint64_t messages = add(add(o.max_queue, mul(2, uint64_t(std::max(0, o.workers)))),
                                mul(o.max_connections, per_connection));
  return mul(messages, o.max_message_bytes);
}

struct Server::Impl {
  std::shared_ptr<ServerContext> ctx;
  net::io_context ioc;
  tcp::acceptor acceptor;
  net::signal_set signals;
  net::steady_timer drain_timer;
  net::steady_timer accept_retry;
  std::chrono::steady_clock::time_point drain_deadline;
  bool shutting_down = false;   // touched only on the acceptor's strand
  bool signal_received = false;  // set by the signal handler; read after run() has returned
  bool accept_failing = false;  // likewise: an accept error was logged and not yet cleared

  Impl(ServerOptions opt, InferFn infer, Dict metadata)
      : ctx(std::make_shared<ServerContext>(std::move(opt), std::move(infer), encode(metadata))),
        ioc(std::max(1, ctx->opt.io_threads)),
        acceptor(net::make_strand(ioc)),
        signals(acceptor.get_executor()),
        drain_timer(acceptor.get_executor()),
        accept_retry(acceptor.get_executor()) {
    const ServerOptions& o = ctx->opt;
    if (o.max_message_bytes == 0) throw Error("--max-message-bytes must be positive");
    const std::string where = o.host + ":" + std::to_string(o.port);
    beast::error_code ec;
    auto addr = net::ip::make_address(o.host, ec);
    if (ec) {  // a host name ("localhost"): its first address
      tcp::resolver resolver(ioc);
      auto found = resolver.resolve(o.host, "", ec);
      if (ec || found.empty())
        throw Error(ErrorInfo{.message = "neither an IP address nor a host name this machine resolves: " + ec.message(),
                              .file = where, .field = "host", .expected = "e.g. 0.0.0.0, 127.0.0.1, ::1, localhost",
                              .got = o.host});
      addr = found.begin()->endpoint().address();
    }
    tcp::endpoint ep(addr, o.port);
    acceptor.open(ep.protocol(), ec);
    if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
    if (!ec) acceptor.bind(ep, ec);
    if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
    if (ec) throw Error(ErrorInfo{"cannot listen: " + ec.message(), where});
  }

  void do_accept() {
    acceptor.async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
      if (!acceptor.is_open()) return;  // shutting down
      if (ec) return retry_accept(ec);
      accept_failing = false;
      std::make_shared<HttpSession>(std::move(socket), ctx)->run();
      do_accept();
    });
  }

  // Out of file descriptors (or another resource), accept fails at once for as long as the
  // connection waits in the backlog: retrying immediately would spin a core and flood the log.
  // Wait a little instead, and say it once per episode; connections closing (or timing out,
  // --handshake-timeout) free descriptors and the waiting client is taken then.
  void retry_accept(const beast::error_code& ec) {
    if (!accept_failing) ctx->log("accept failed: " + ec.message() + "; retrying every 100 ms until it clears");
    accept_failing = true;
    accept_retry.expires_after(std::chrono::milliseconds(100));
    accept_retry.async_wait([this](beast::error_code e) {
      if (!e && acceptor.is_open()) do_accept();
    });
  }

  // On the acceptor's strand. Stop accepting, ask every session to close once its request in
  // flight is answered, then wait (polling the session counters) until none is left or the
  // deadline passes. When nothing is left, no handler keeps the io_context busy and run() returns.
  void begin_shutdown() {
    if (shutting_down) return;
    shutting_down = true;
    ctx->log("shutting down: finishing the requests in flight");
    ctx->draining = true;
    beast::error_code ignored;
    acceptor.close(ignored);
    accept_retry.cancel();
    for (auto& s : ctx->live_sessions()) s->drain();
    for (auto& s : ctx->live_http_sessions()) s->drain();
    drain_deadline = std::chrono::steady_clock::now() + std::chrono::seconds(ctx->opt.shutdown_timeout_s);
    poll_drain();
  }

  // The first SIGINT/SIGTERM drains (requests received are answered); a second one means "now":
  // the connections are dropped and run() returns at once.
  void wait_for_signal() {
    signals.async_wait([this](beast::error_code ec, int sig) {
      if (ec) return;
      const std::string name = sig == SIGINT ? "SIGINT" : "SIGTERM";
      if (shutting_down) {
        ctx->log("received a second " + name + ": closing " + std::to_string(ctx->ws_sessions.load()) +
                 " connection(s) now");
        ioc.stop();
        return;
      }
      signal_received = true;
      ctx->log("received " + name + " (again to stop at once)");
      net::post(acceptor.get_executor(), [this] { begin_shutdown(); });
      wait_for_signal();
    });
  }

  void poll_drain() {
    if (ctx->ws_sessions == 0 && ctx->http_sessions == 0) {
      beast::error_code ignored;
      signals.cancel(ignored);  // the last pending handler: run() can return
      return;
    }
    if (std::chrono::steady_clock::now() >= drain_deadline) {
      ctx->log("shutdown timeout: closing " + std::to_string(ctx->ws_sessions.load()) + " connection(s) forcibly");
      ioc.stop();
      return;
    }
    drain_timer.expires_after(std::chrono::milliseconds(20));
    drain_timer.async_wait([this](beast::error_code ec) {
      if (!ec) poll_drain();
    });
  }
};

Server::Server(ServerOptions opt, InferFn infer, Dict metadata)
    : impl_(std::make_unique<Impl>(std::move(opt), std::move(infer), std::move(metadata))) {}

Server::~Server() {
  const bool signalled = impl_->signal_received;
  impl_.reset();  // the signal_set goes: SIGINT/SIGTERM fall back to their default action
  // A signal already stopped this server and the process is on its way out (ASan's exit-time leak
  // check alone takes seconds): a repeated SIGTERM from a supervisor must not turn the clean exit
  // into a kill by signal.
  if (signalled) {
    std::signal(SIGINT, SIG_IGN);
    std::signal(SIGTERM, SIG_IGN);
  }
}

std::string Server::url() const {
  beast::error_code ec;
  const auto ep = impl_->acceptor.local_endpoint(ec);
  const std::string host = ep.address().is_v6() ? "[" + ep.address().to_string() + "]" : ep.address().to_string();
  return "ws://" + host + ":" + std::to_string(port());
}

uint16_t Server::port() const {
  beast::error_code ec;
  auto ep = impl_->acceptor.local_endpoint(ec);
  return ec ? 0 : ep.port();
}

void Server::shutdown() {
  net::post(impl_->acceptor.get_executor(), [impl = impl_.get()] { impl->begin_shutdown(); });
}

void Server::run() {
  Impl& m = *impl_;
  if (m.ctx->opt.handle_signals) {
    m.signals.add(SIGINT);
    m.signals.add(SIGTERM);
    m.wait_for_signal();
  }
  m.do_accept();
  std::vector<std::thread> extra;
  for (int i = 1; i < m.ctx->opt.io_threads; ++i) extra.emplace_back([&m] { m.ioc.run(); });
  m.ioc.run();
  for (auto& t : extra) t.join();
  // Every connection is closed (or the deadline forced the stop): let the workers finish.
  m.ctx->queue.finish();
  m.ctx->queue.join();
}

}  // namespace pi0::serve
