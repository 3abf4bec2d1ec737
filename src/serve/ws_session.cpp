#include "serve/ws_session.h"

#include <algorithm>
#include <cstdio>

namespace pi0::serve {

namespace {
// Close reasons travel in a control frame: at most 123 bytes.
websocket::close_reason make_reason(websocket::close_code code, const std::string& text) {
  std::string r = text.substr(0, std::min<size_t>(text.find('\n'), 120));
  return websocket::close_reason(code, r);
}
}  // namespace

WsSession::WsSession(beast::tcp_stream&& stream, std::shared_ptr<ServerContext> ctx, std::string peer)
    : ws_(std::move(stream)), ctx_(std::move(ctx)), peer_(std::move(peer)), id_(ctx_->next_id++),
      message_deadline_(ws_.get_executor()) {
  ctx_->ws_sessions++;
}

WsSession::~WsSession() { ctx_->ws_sessions--; }

void WsSession::run(http::request<http::string_body> req) {
  ctx_->add_session(shared_from_this());
  // From here on the WebSocket layer owns the timeouts; the HTTP-phase deadline must go.
  beast::get_lowest_layer(ws_).expires_never();
  websocket::stream_base::timeout t;
  t.handshake_timeout = std::chrono::seconds(ctx_->opt.handshake_timeout_s);
  t.idle_timeout = std::chrono::seconds(ctx_->opt.idle_timeout_s);
  t.keep_alive_pings = true;  // ping at half the idle timeout; a peer that stays silent is dropped
  ws_.set_option(t);
  ws_.set_option(websocket::stream_base::decorator(
      [](websocket::response_type& res) { res.set(http::field::server, "pi0.cpp"); }));
  ws_.auto_fragment(false);  // one frame per message, as Python websockets sends them
  ws_.read_message_max(0);   // sizes are checked in on_read, so that we can say why we refuse
  ws_.async_accept(req, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
}

void WsSession::on_accept(beast::error_code ec) {
  if (ec) {
    ctx_->log("connection " + std::to_string(id_) + " from " + peer_ + ": handshake failed: " + ec.message());
    gone_ = true;
    return;
  }
  accepted_ = true;
  ctx_->log("connection " + std::to_string(id_) + " from " + peer_ + " open");
  // docs/model.md §7: the metadata is the first frame. The cycle timer starts once it is out, as openpi's
  // loop starts after its metadata send.
  send(Out{true, ctx_->metadata_frame, false});
  cycle_start_ = Clock::now();
  if (ctx_->draining) fail(websocket::close_code::going_away, "");
  do_read();
}

void WsSession::drain() {
  net::post(ws_.get_executor(), [self = shared_from_this()] {
    if (!self->accepted_ || self->gone_ || self->closing_) return;
    // Requests already received (in flight, or pipelined behind it) are answered first; the
    // connection closes (1001) after the last reply.
    if (!self->in_flight_) self->fail(websocket::close_code::going_away, "");
  });
}

void WsSession::do_read() {
  // Read at most one byte past the limit: enough to know a message is too big, never more (a frame
  // header announcing too much is refused at the first read after it: announced_bytes()).
  const size_t max = ctx_->opt.max_message_bytes;
  size_t chunk = closing_ ? size_t(1) << 16 : std::min<size_t>(size_t(1) << 20, max - std::min(max, msg_bytes_) + 1);
  ws_.async_read_some(buffer_, chunk, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
}

void WsSession::on_read(beast::error_code ec, size_t n) {
  if (ec) {
    gone_ = true;
    message_deadline_.cancel();  // its handler holds this session: let it go now
    if (ec == websocket::error::closed || close_started_)
      ctx_->log("connection " + std::to_string(id_) + " closed after " + std::to_string(requests_) + " request(s)");
    else
      ctx_->log("connection " + std::to_string(id_) + " lost after " + std::to_string(requests_) + " request(s): " + ec.message());
    return;
  }
  if (closing_) {  // after our close frame: read and discard until the peer's close arrives
    buffer_.consume(buffer_.size());
    return do_read();
  }
  if (msg_bytes_ == 0 && n > 0) arm_message_deadline();
  msg_bytes_ += n;
  if (announced_bytes() > ctx_->opt.max_message_bytes) {
    buffer_.consume(buffer_.size());
    const std::string limit = std::to_string(ctx_->opt.max_message_bytes);
    ctx_->metrics.count(Outcome::TooBig);
    fail(websocket::close_code::too_big,
         "message too big: more than " + limit + " bytes (the server's --max-message-bytes is " + limit + ")");
    return do_read();
  }
  if (!ws_.is_message_done()) return do_read();
  const bool binary = ws_.got_binary();
  std::string frame = beast::buffers_to_string(buffer_.data());
  buffer_.consume(buffer_.size());
  // Give the message's capacity back: an idle robot (or a refused one waiting for its close
  // handshake) must not keep megabytes each, up to --max-connections × --max-message-bytes.
  buffer_.shrink_to_fit();
  msg_bytes_ = 0;
  ++message_no_;  // the deadline of this message no longer applies
  message_deadline_.cancel();
  if (!binary) {
    ctx_->metrics.count(Outcome::TextFrame);
    fail(websocket::close_code::unknown_data, "expected a binary msgpack frame, got a text frame");
  } else {
    on_message(std::move(frame));
  }
  do_read();
}

uint64_t WsSession::announced_bytes() const {
  // The bytes of this message read so far plus what its current frame header still announces, so a
  // header that promises more than the limit is refused at the first read after it, not after the
  // limit's worth of payload (Beast's own limit would refuse too, but with an empty close reason).
  // read_size_hint(1) is the frame's remaining payload, or 1 when that is unknown (between frames).
  if (ws_.is_message_done()) return msg_bytes_;
  const size_t rest = ws_.read_size_hint(1);
  return msg_bytes_ + (rest > 1 ? rest : 0);
}

void WsSession::on_message(std::string frame) {
  if (ctx_->draining) {
    if (!in_flight_) fail(websocket::close_code::going_away, "the server is shutting down");
    return;  // with a request in flight, the connection closes after its reply
  }
  if (!in_flight_) return submit(std::move(frame));
  if (ahead_.size() >= ctx_->opt.max_pipelined) {
    ctx_->metrics.count(Outcome::Pipelined);
    return fail(websocket::close_code::policy_error,
                "too many requests sent ahead of their replies (at most " + std::to_string(ctx_->opt.max_pipelined) + ")");
  }
  ahead_.push_back(std::move(frame));
}

void WsSession::submit(std::string frame) {
  in_flight_ = true;
  ++requests_;
  submitted_ = Clock::now();
  auto f = std::make_shared<std::string>(std::move(frame));
  auto job = [self = shared_from_this(), f, prev = prev_total_ms_] {
    RequestOutcome r;
    if (!self->gone_) r = process_request(*f, self->ctx_->infer, self->ctx_->opt.limits, prev);
    f->clear();
    net::post(self->ws_.get_executor(), [self, r = std::move(r)]() mutable { self->on_result(std::move(r)); });
  };
  if (!ctx_->queue.try_push(std::move(job))) {
    in_flight_ = false;
    ctx_->metrics.count(Outcome::Busy);
    ctx_->log("connection " + std::to_string(id_) + ": queue full, request refused");
    fail(websocket::close_code::try_again_later,
         "server busy: " + std::to_string(ctx_->queue.capacity()) + " requests already wait for the model (--max-queue); retry later");
  }
}

void WsSession::on_result(RequestOutcome r) {
  if (gone_) return;
  if (closing_) {  // the connection failed meanwhile (e.g. a message too big): no reply after close
    in_flight_ = false;
    return;
  }
  if (!r.ok && r.keep_connection) {  // answered like a reply; the next request is served as usual
    ctx_->log("connection " + std::to_string(id_) + ": request " + std::to_string(requests_) + ": " + r.payload);
    return send(Out{false, std::move(r.payload), true, true});
  }
  if (!r.ok) {
    in_flight_ = false;
    ctx_->metrics.count(Outcome::Error);
    ctx_->metrics.observe_latency(std::chrono::duration<double>(Clock::now() - submitted_).count());
    ctx_->log("connection " + std::to_string(id_) + ": request " + std::to_string(requests_) + ": " + r.payload);
    return fail(websocket::close_code::internal_error, std::move(r.payload));
  }
  last_infer_ms_ = r.infer_ms;
  send(Out{true, std::move(r.payload), true});
}

void WsSession::on_reply_sent(bool error) {
  const auto now = Clock::now();
  const double seconds = std::chrono::duration<double>(now - submitted_).count();
  ctx_->metrics.count(error ? Outcome::Error : Outcome::Ok);
  ctx_->metrics.observe_latency(seconds);
  char ms[64];
  std::snprintf(ms, sizeof ms, "%.1f ms (model %.1f ms)", 1e3 * seconds, last_infer_ms_);
  if (!error)
    ctx_->log("connection " + std::to_string(id_) + ": request " + std::to_string(requests_) + " answered in " + ms);
  prev_total_ms_ = std::chrono::duration<double, std::milli>(now - cycle_start_).count();
  cycle_start_ = now;
  in_flight_ = false;
  if (closing_) return;
  if (ctx_->draining && ahead_.empty()) return fail(websocket::close_code::going_away, "");
  if (!ahead_.empty()) {
    std::string next = std::move(ahead_.front());
    ahead_.pop_front();
    submit(std::move(next));
  }
}

void WsSession::send(Out out) {
  out_.push_back(std::move(out));
  if (!writing_) do_write();
}

void WsSession::do_write() {
  writing_ = true;
  ws_.binary(out_.front().binary);
  ws_.async_write(net::buffer(out_.front().data), [self = shared_from_this()](beast::error_code ec, size_t) {
    self->on_write(ec);
  });
}

void WsSession::on_write(beast::error_code ec) {
  writing_ = false;
  const bool was_reply = out_.front().is_reply, was_error = out_.front().is_error;
  out_.pop_front();
  if (ec) {  // the peer is gone; the pending read reports it
    gone_ = true;
    out_.clear();
    return;
  }
  if (was_reply) on_reply_sent(was_error);
  if (!out_.empty()) return do_write();
  if (closing_) do_close();
}

void WsSession::fail(websocket::close_code code, std::string text) {
  if (closing_ || gone_) return;
  closing_ = true;
  ahead_.clear();
  close_reason_ = make_reason(code, text.empty() ? "server shutting down" : text);
  if (!text.empty()) out_.push_back(Out{false, std::move(text), false});  // openpi: a str reply is an error
  if (!writing_) {
    if (out_.empty()) do_close();
    else do_write();
  }
}

void WsSession::arm_message_deadline() {
  const uint64_t no = ++message_no_;
  message_deadline_.expires_after(std::chrono::seconds(ctx_->opt.message_timeout_s));
  message_deadline_.async_wait([self = shared_from_this(), no](beast::error_code ec) {
    if (ec || no != self->message_no_ || self->gone_) return;
    self->ctx_->metrics.count(Outcome::TimedOut);
    // The peer is trickling a message (or stalled mid-frame): drop the TCP connection now. A close
    // handshake would wait on the same peer.
    self->ctx_->log("connection " + std::to_string(self->id_) + " from " + self->peer_ + " dropped: a message did not " +
                    "arrive within " + std::to_string(self->ctx_->opt.message_timeout_s) + " s (--message-timeout)");
    self->gone_ = true;
    beast::error_code ignored;
    beast::get_lowest_layer(self->ws_).socket().shutdown(tcp::socket::shutdown_both, ignored);
    beast::get_lowest_layer(self->ws_).socket().close(ignored);
  });
}

void WsSession::do_close() {
  if (close_started_ || gone_) return;
  close_started_ = true;
  ws_.async_close(close_reason_, [self = shared_from_this()](beast::error_code) {});
}

}  // namespace pi0::serve
