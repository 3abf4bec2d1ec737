// One robot's WebSocket connection, after the HTTP upgrade: send the metadata, then answer each
// binary msgpack request with one binary reply, in order. A read is always outstanding (so pings
// are answered and a vanished peer is noticed even while its request runs); requests go to the
// shared WorkQueue and replies come back on this connection's strand. Any failure sends a text
// frame saying why, then a close frame: 1011 bad request / policy error, 1009 message too big,
// 1013 queue full, 1008 too many requests ahead of replies, 1003 text frame, 1001 shutdown.
#pragma once
#include <atomic>
#include <chrono>
#include <deque>
#include <memory>
#include <optional>
#include <string>

#include "serve/beast.h"
#include "serve/context.h"

namespace pi0::serve {

class WsSession : public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(beast::tcp_stream&& stream, std::shared_ptr<ServerContext> ctx, std::string peer);
  ~WsSession();
  // Completes the upgrade for `req` (already read by HttpSession).
  void run(http::request<http::string_body> req);
  // Thread-safe: close once the request in flight (if any) is answered.
  void drain();

 private:
  struct Out {
    bool binary;
    std::string data;
    bool is_reply;
    bool is_error = false;  // a text reply that leaves the connection open (an rtc_* field error)
  };
  using Clock = std::chrono::steady_clock;

  void on_accept(beast::error_code ec);
  void do_read();
  void on_read(beast::error_code ec, size_t n);
  uint64_t announced_bytes() const;  // this message's bytes read + still announced by its frame header
  void on_message(std::string frame);
  void submit(std::string frame);
  void on_result(RequestOutcome r);
  void on_reply_sent(bool error);
  void send(Out out);
  void do_write();
  void on_write(beast::error_code ec);
  void fail(websocket::close_code code, std::string text);
  void do_close();
  void arm_message_deadline();

  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<ServerContext> ctx_;
  const std::string peer_;
  const uint64_t id_;
  beast::flat_buffer buffer_;
  size_t msg_bytes_ = 0;            // bytes of the message being read so far
  net::steady_timer message_deadline_;  // armed while a message is partly read
  uint64_t message_no_ = 0;         // messages begun: tells a stale deadline from the current one
  std::deque<std::string> ahead_;   // requests received while one is in flight
  std::deque<Out> out_;             // frames to write, in order; front() is being written
  bool writing_ = false;
  bool accepted_ = false;
  bool in_flight_ = false;          // a request is queued or running, or its reply being written
  bool closing_ = false;            // fail() was called: no more requests are taken
  bool close_started_ = false;
  websocket::close_reason close_reason_;
  std::atomic<bool> gone_{false};   // the peer is gone: workers skip this session's jobs
  uint64_t requests_ = 0;
  Clock::time_point cycle_start_;   // openpi's start of the receive-infer-send cycle
  Clock::time_point submitted_;     // the request in flight was handed to the queue
  double last_infer_ms_ = 0;        // its time in the policy (for the log line)
  std::optional<double> prev_total_ms_;
};

}  // namespace pi0::serve
