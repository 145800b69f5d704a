// The Beast side of HttpApi: the listener, the per-connection sessions and
// the shared state they hold. The only translation unit that includes
// Boost.Beast (compile time); what a request means is HttpRouter's business.
//
// Ownership: HttpApi -> shared_ptr<HttpServerCore>; every session and every
// queued handler of the listener holds the core too, so the core lives as
// long as anything in the io_context refers to it. A session is owned by its
// pending operations (socket read or write, or the request timer while the
// ClientApi has the request); the ClientApi callback only holds a weak_ptr,
// so a callback that arrives after the io_context is gone finds nothing.
#include <atomic>
#include <chrono>
#include <limits>
#include <mutex>
#include <optional>
#include <unordered_map>

#include <unistd.h>

// GCC 12 reports "potential null pointer dereference" inside Asio's strand and
// scheduler code once it is inlined here (false positives in Boost, not in
// this file); the warning stays on for the code below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/dispatch.hpp>
#include <boost/asio/ip/address.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

#include "http/http_metrics.hpp"
#include "http/http_router.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/net/http_api.hpp"

namespace nodenomad::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Milliseconds = std::chrono::milliseconds;

namespace {
// Bytes asked of the socket per read while waiting for a request or lingering.
constexpr std::size_t kReadChunkBytes = 16 * 1024;
// After a failed accept (EMFILE, ENOBUFS) the listener waits this long
// instead of spinning on an error that persists.
constexpr Milliseconds kAcceptRetryDelay{100};
// A label for requests that never got as far as a parsed request line.
constexpr std::string_view kUnparsedRoute = "unparsed";
}  // namespace

class HttpSession;

class HttpServerCore : public std::enable_shared_from_this<HttpServerCore> {
 public:
  HttpServerCore(asio::io_context& io, ClientApi& api, HttpOptions options)
      : io_(io),
        options_(options),
        router_(api,
                RouterLimits{options.max_value_bytes, options.max_key_bytes, options.retry_after_s},
                [this] { return metrics_text(); }),
        acceptor_(asio::make_strand(io)),
        accept_retry_timer_(acceptor_.get_executor()) {}

  // Starts serving `socket` (already on a strand of io_), or refuses it.
  void admit(tcp::socket socket, std::string already_read);
  Status listen(const std::string& address);
  void stop();
  // ~HttpApi: no thread runs the io_context, so the listener can be closed
  // here, and from now on ClientApi answers are dropped.
  void destroy();
  // Posts a ClientApi answer onto its session's strand, unless destroyed.
  void post_answer(const std::shared_ptr<HttpSession>& session, std::uint64_t seq,
                   RouterResponse response);
  void forget(const HttpSession* session, bool counted);
  std::size_t open_connections() const {
    std::lock_guard lock(mutex_);
    return open_connections_;
  }
  std::string metrics_text() const { return metrics_.text(open_connections()); }

  asio::io_context& io() { return io_; }
  const HttpOptions& options() const { return options_; }
  const HttpRouter& router() const { return router_; }
  HttpMetrics& metrics() { return metrics_; }
  bool stopping() const { return stopping_.load(); }
  bool destroyed() const { return destroyed_.load(); }
  std::uint16_t port() const { return port_.load(); }

 private:
  void accept_next();

  asio::io_context& io_;
  const HttpOptions options_;
  HttpMetrics metrics_;
  HttpRouter router_;
  tcp::acceptor acceptor_;
  asio::steady_timer accept_retry_timer_;
  std::atomic<std::uint16_t> port_{0};
  std::atomic<bool> stopping_{false};
  std::atomic<bool> destroyed_{false};
  // Guards the tables below, and orders post_answer against destroy().
  mutable std::mutex mutex_;
  std::size_t open_connections_ = 0;
  std::size_t refusing_connections_ = 0;
  std::unordered_map<const HttpSession*, std::weak_ptr<HttpSession>> sessions_;
};

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(std::shared_ptr<HttpServerCore> core, tcp::socket socket, std::string already_read,
              bool counted)
      : core_(std::move(core)),
        stream_(std::move(socket)),
        request_timer_(stream_.get_executor()),
        counted_(counted) {
    const std::size_t size = already_read.size();
    buffer_.commit(asio::buffer_copy(buffer_.prepare(size), asio::buffer(already_read)));
  }
  ~HttpSession() { core_->forget(this, counted_); }

  asio::any_io_executor executor() { return stream_.get_executor(); }
  void start() { wait_for_request(); }
  void refuse();
  void on_stop();
  void on_answer(std::uint64_t seq, RouterResponse response);

 private:
  enum class State { kWaiting, kReading, kRouting, kWriting, kClosing };
  enum class After { kKeepAlive, kClose, kLingerThenClose };

  void wait_for_request();
  void on_first_bytes(error_code ec, std::size_t bytes);
  void read_request();
  void on_header(error_code ec, std::size_t bytes);
  void read_body();
  void on_read(error_code ec, std::size_t bytes);
  void on_read_error(error_code ec);
  void answer_early(unsigned status, std::string_view code, const std::string& message);
  void dispatch(http::request<http::string_body> request);
  void write(RouterResponse response, After after);
  void on_write(error_code ec, std::size_t bytes);
  void linger();
  void close();
  std::string peer() const;

  std::shared_ptr<HttpServerCore> core_;
  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  http::response<http::string_body> response_;
  asio::steady_timer request_timer_;
  const bool counted_;
  State state_ = State::kWaiting;
  After after_write_ = After::kClose;
  unsigned http_version_ = 11;
  bool keep_alive_ = false;
  // Numbers the requests of this connection, so that an answer that comes
  // after its request was timed out (or a second answer) is recognised.
  std::uint64_t request_seq_ = 0;
  std::string route_;  // empty: not counted in the request metrics
  std::string method_;
  std::chrono::steady_clock::time_point request_read_at_;
  std::size_t lingered_bytes_ = 0;
};

// ---- HttpSession ----------------------------------------------------------

void HttpSession::wait_for_request() {
  if (core_->destroyed() || core_->stopping()) return close();
  if (buffer_.size() > 0) return read_request();  // pipelined, or handed over
  state_ = State::kWaiting;
  stream_.expires_after(Milliseconds(core_->options().idle_timeout_ms));
  stream_.async_read_some(
      buffer_.prepare(kReadChunkBytes),
      beast::bind_front_handler(&HttpSession::on_first_bytes, shared_from_this()));
}

void HttpSession::on_first_bytes(error_code ec, std::size_t bytes) {
  // A timeout, an EOF or stop() while idle: nothing is owed to anyone.
  if (ec || core_->destroyed()) return close();
  buffer_.commit(bytes);
  read_request();
}

void HttpSession::read_request() {
  state_ = State::kReading;
  const HttpOptions& options = core_->options();
  parser_.emplace();
  parser_->header_limit(static_cast<std::uint32_t>(
      std::min<std::size_t>(options.max_header_bytes, std::numeric_limits<std::uint32_t>::max())));
  parser_->body_limit(std::uint64_t{options.max_value_bytes});
  // One deadline for the whole request: a client trickling bytes cannot hold
  // the connection longer than read_timeout_ms.
  stream_.expires_after(Milliseconds(options.read_timeout_ms));
  http::async_read_header(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&HttpSession::on_header, shared_from_this()));
}

void HttpSession::on_header(error_code ec, std::size_t /*bytes*/) {
  if (core_->destroyed()) return close();
  if (ec) return on_read_error(ec);
  // A client that sent "Expect: 100-continue" (curl does for bodies over
  // 1 KiB) waits for this before it sends the body; without it, curl waits a
  // second. A body over the limit never gets here: the header read already
  // failed with body_limit, and the client gets 413 instead.
  if (beast::iequals(parser_->get()[http::field::expect], "100-continue")) {
    static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
    return asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                             [self = shared_from_this()](error_code write_ec, std::size_t) {
                               if (write_ec || self->core_->destroyed()) return self->close();
                               self->read_body();
                             });
  }
  read_body();
}

void HttpSession::read_body() {
  http::async_read(stream_, buffer_, *parser_,
                   beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
}

void HttpSession::on_read(error_code ec, std::size_t /*bytes*/) {
  if (core_->destroyed()) return close();
  if (ec) return on_read_error(ec);
  dispatch(parser_->release());
}

void HttpSession::on_read_error(error_code ec) {
  const HttpOptions& options = core_->options();
  if (ec == http::error::body_limit) {
    return answer_early(413, "value_too_large",
                        "the request body is over max_value_bytes (" +
                            std::to_string(options.max_value_bytes) + " bytes)");
  }
  if (ec == http::error::header_limit) {
    return answer_early(431, "header_too_large",
                        "the request line and headers are over max_header_bytes (" +
                            std::to_string(options.max_header_bytes) + " bytes)");
  }
  const bool malformed = ec.category() == http::make_error_code(http::error::bad_method).category();
  if (malformed && ec != http::error::end_of_stream && ec != http::error::partial_message) {
    return answer_early(400, "bad_request", "malformed HTTP request: " + ec.message());
  }
  // EOF, reset, timeout, stop(): the client is gone or too slow to be owed
  // an answer.
  close();
}

// Answers a request that could not be read whole (413, 431, 400). The rest
// of it may still be on its way, so the connection is closed after a linger.
void HttpSession::answer_early(unsigned status, std::string_view code, const std::string& message) {
  route_ = std::string(kUnparsedRoute);
  method_ = "other";
  http_version_ = 11;
  if (parser_ && parser_->is_header_done()) {
    const auto& header = parser_->get();
    route_ = std::string(route_label(header.target()));
    method_ = std::string(header.method_string());
    http_version_ = header.version();
  }
  if (log_enabled(LogLevel::kInfo)) {
    log(LogLevel::kInfo, "http",
        "answered " + std::to_string(status) + " to " + peer() + ": " + message);
  }
  request_read_at_ = std::chrono::steady_clock::now();
  write(error_response(status, code, message, core_->options().retry_after_s),
        After::kLingerThenClose);
}

void HttpSession::dispatch(http::request<http::string_body> request) {
  state_ = State::kRouting;
  request_read_at_ = std::chrono::steady_clock::now();
  http_version_ = request.version();
  keep_alive_ = request.keep_alive();
  method_ = std::string(request.method_string());
  const std::uint64_t seq = ++request_seq_;
  // The timer's handler owns the session while the ClientApi has the request.
  request_timer_.expires_after(Milliseconds(core_->options().request_timeout_ms));
  request_timer_.async_wait([self = shared_from_this(), seq](error_code ec) {
    if (ec) return;  // cancelled: the answer came
    self->on_answer(seq, error_response(504, "timeout",
                                        "the node did not answer within request_timeout_ms; "
                                        "the outcome is unknown"));
  });
  RespondFn respond = [weak = weak_from_this(), seq](RouterResponse response) {
    // Any thread. A session that is gone (its io_context was destroyed, or
    // it timed this request out and closed) has no one left to tell.
    if (auto self = weak.lock()) self->core_->post_answer(self, seq, std::move(response));
  };
  route_ = std::string(core_->router().route(
      RouterRequest{request.method_string(), request.target(), std::move(request.body())},
      std::move(respond)));
}

void HttpSession::on_answer(std::uint64_t seq, RouterResponse response) {
  if (seq != request_seq_ || state_ != State::kRouting) return;  // late or repeated
  request_timer_.cancel();
  if (core_->destroyed()) return close();
  write(std::move(response), keep_alive_ && !core_->stopping() ? After::kKeepAlive : After::kClose);
}

void HttpSession::write(RouterResponse response, After after) {
  state_ = State::kWriting;
  after_write_ = after;
  response_ = {};
  response_.version(http_version_);
  response_.result(response.status);
  response_.set(http::field::server, "nodenomad");
  if (!response.content_type.empty()) {
    response_.set(http::field::content_type, response.content_type);
  }
  for (auto& [name, value] : response.headers) response_.set(name, value);
  response_.body() = std::move(response.body);
  response_.keep_alive(after == After::kKeepAlive);
  response_.prepare_payload();
  stream_.expires_after(Milliseconds(core_->options().write_timeout_ms));
  http::async_write(stream_, response_,
                    beast::bind_front_handler(&HttpSession::on_write, shared_from_this()));
}

void HttpSession::on_write(error_code ec, std::size_t /*bytes*/) {
  if (!route_.empty()) {
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - request_read_at_;
    core_->metrics().record_request(route_, method_, response_.result_int(), took.count());
  }
  if (ec || core_->destroyed()) return close();
  switch (after_write_) {
    case After::kKeepAlive:
      return wait_for_request();
    case After::kClose:
      return close();
    case After::kLingerThenClose:
      break;
  }
  // Stop sending, then read and discard what the client still sends until
  // it closes, so that unread bytes do not make the kernel reset the
  // connection and destroy the answer before the client read it.
  state_ = State::kClosing;
  error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
  buffer_.consume(buffer_.size());
  lingered_bytes_ = 0;
  stream_.expires_after(Milliseconds(core_->options().linger_timeout_ms));
  linger();
}

void HttpSession::linger() {
  stream_.async_read_some(buffer_.prepare(kReadChunkBytes), [self = shared_from_this()](
                                                                error_code ec, std::size_t bytes) {
    self->lingered_bytes_ += bytes;
    if (ec || self->lingered_bytes_ >= self->core_->options().linger_max_bytes) {
      return self->close();
    }
    self->linger();
  });
}

void HttpSession::refuse() {
  route_.clear();  // counted as a refused connection, not as a request
  core_->metrics().record_connection_refused();
  if (log_enabled(LogLevel::kWarn)) {
    log(LogLevel::kWarn, "http",
        "refused a connection from " + peer() + ": max_connections reached or stopping");
  }
  write(error_response(503, "unavailable",
                       "the server is at max_connections or stopping; retry later",
                       core_->options().retry_after_s),
        After::kLingerThenClose);
}

void HttpSession::on_stop() {
  // Only an idle connection is closed now; one with a request is answered
  // first (wait_for_request() closes it afterwards).
  if (state_ == State::kWaiting) close();
}

void HttpSession::close() {
  state_ = State::kClosing;
  request_timer_.cancel();
  error_code ignored;
  stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  stream_.close();
}

std::string HttpSession::peer() const {
  error_code ec;
  const tcp::endpoint endpoint = stream_.socket().remote_endpoint(ec);
  if (ec) return "a closed connection";
  return endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

// ---- HttpServerCore -------------------------------------------------------

void HttpServerCore::admit(tcp::socket socket, std::string already_read) {
  enum class Kind { kServe, kRefuse, kDrop } kind = Kind::kDrop;
  std::shared_ptr<HttpSession> session;
  {
    std::lock_guard lock(mutex_);
    if (!stopping_ && open_connections_ < options_.max_connections) {
      kind = Kind::kServe;
      ++open_connections_;
    } else if (refusing_connections_ < options_.max_connections) {
      // Refusing takes a write and a linger; bounded too, so that a flood
      // cannot turn refusals into an unbounded number of open sockets.
      kind = Kind::kRefuse;
      ++refusing_connections_;
    }
    if (kind != Kind::kDrop) {
      session = std::make_shared<HttpSession>(shared_from_this(), std::move(socket),
                                              std::move(already_read), kind == Kind::kServe);
    }
    if (kind == Kind::kServe) sessions_.emplace(session.get(), session);
  }
  if (kind == Kind::kDrop) {
    metrics_.record_connection_refused();
    error_code ignored;
    socket.close(ignored);
    return;
  }
  asio::post(session->executor(), [session, serve = kind == Kind::kServe] {
    serve ? session->start() : session->refuse();
  });
}

void HttpServerCore::forget(const HttpSession* session, bool counted) {
  std::lock_guard lock(mutex_);
  if (counted) {
    --open_connections_;
    sessions_.erase(session);
  } else {
    --refusing_connections_;
  }
}

void HttpServerCore::post_answer(const std::shared_ptr<HttpSession>& session, std::uint64_t seq,
                                 RouterResponse response) {
  std::lock_guard lock(mutex_);
  if (destroyed_) return;  // the io_context may be gone: touch nothing
  asio::post(session->executor(), [session, seq, response = std::move(response)]() mutable {
    session->on_answer(seq, std::move(response));
  });
}

void HttpServerCore::stop() {
  std::vector<std::weak_ptr<HttpSession>> sessions;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
    for (const auto& [ptr, weak] : sessions_) sessions.push_back(weak);
  }
  asio::post(acceptor_.get_executor(), [self = shared_from_this()] {
    error_code ignored;
    self->acceptor_.close(ignored);
    self->accept_retry_timer_.cancel();
  });
  for (const auto& weak : sessions) {
    if (auto session = weak.lock()) {
      asio::post(session->executor(), [session] { session->on_stop(); });
    }
  }
}

void HttpServerCore::destroy() {
  stop();
  {
    std::lock_guard lock(mutex_);
    destroyed_ = true;
  }
  error_code ignored;
  acceptor_.close(ignored);  // no thread runs the io_context (HttpApi's contract)
}

// "host:port", "[v6]:port"; host empty = any address, "localhost" = 127.0.0.1.
Result<tcp::endpoint> parse_listen_address(const std::string& address) {
  const Status bad = Status::invalid_argument("cannot listen on '" + address +
                                              "': expected host:port, [ipv6]:port or :port");
  std::string host;
  std::string port_text;
  if (address.starts_with('[')) {
    const std::size_t close = address.find("]:");
    if (close == std::string::npos) return bad;
    host = address.substr(1, close - 1);
    port_text = address.substr(close + 2);
  } else {
    const std::size_t colon = address.rfind(':');
    if (colon == std::string::npos) return bad;
    host = address.substr(0, colon);
    port_text = address.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5 ||
      port_text.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(port_text) > 65535) {
    return bad;
  }
  if (host.empty()) host = "0.0.0.0";
  if (host == "localhost") host = "127.0.0.1";
  error_code ec;
  const asio::ip::address ip = asio::ip::make_address(host, ec);
  if (ec) return bad;
  return tcp::endpoint(ip, static_cast<std::uint16_t>(std::stoul(port_text)));
}

Status HttpServerCore::listen(const std::string& address) {
  NN_ASSIGN_OR_RETURN(const tcp::endpoint endpoint, parse_listen_address(address));
  error_code ec;
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    error_code ignored;
    acceptor_.close(ignored);
    return Status::io_error("cannot listen on " + address + ": " + ec.message());
  }
  port_ = acceptor_.local_endpoint(ec).port();
  asio::dispatch(acceptor_.get_executor(), [self = shared_from_this()] { self->accept_next(); });
  return Status::ok();
}

void HttpServerCore::accept_next() {
  if (stopping_ || !acceptor_.is_open()) return;
  acceptor_.async_accept(asio::make_strand(io_),
                         [self = shared_from_this()](error_code ec, tcp::socket socket) {
                           if (ec == asio::error::operation_aborted || self->stopping_) return;
                           if (!ec) {
                             self->admit(std::move(socket), {});
                             return self->accept_next();
                           }
                           if (log_enabled(LogLevel::kWarn))
                             log(LogLevel::kWarn, "http", "accept failed: " + ec.message());
                           self->accept_retry_timer_.expires_after(kAcceptRetryDelay);
                           self->accept_retry_timer_.async_wait([self](error_code timer_ec) {
                             if (!timer_ec) self->accept_next();
                           });
                         });
}

// ---- HttpApi --------------------------------------------------------------

HttpApi::HttpApi(asio::io_context& io, ClientApi& api, HttpOptions options) {
  NN_ASSERT(options.read_timeout_ms > 0 && options.write_timeout_ms > 0 &&
                options.idle_timeout_ms > 0 && options.request_timeout_ms > 0 &&
                options.linger_timeout_ms > 0,
            "HttpOptions timeouts must be > 0");
  NN_ASSERT(options.max_connections > 0 && options.max_key_bytes > 0,
            "HttpOptions max_connections and max_key_bytes must be > 0");
  core_ = std::make_shared<HttpServerCore>(io, api, options);
}

HttpApi::~HttpApi() { core_->destroy(); }

void HttpApi::serve(tcp::socket socket, std::string already_read) {
  // Moves the connection onto a fresh strand of this io_context: the caller's
  // socket may live on any executor (the transport's acceptor).
  error_code ec;
  const tcp::endpoint local = socket.local_endpoint(ec);
  const int handle = ec ? -1 : socket.release(ec);
  if (ec) {
    error_code ignored;
    socket.close(ignored);
    return;
  }
  tcp::socket rehomed(asio::make_strand(core_->io()));
  rehomed.assign(local.protocol(), handle, ec);
  if (ec) {
    ::close(handle);
    return;
  }
  core_->admit(std::move(rehomed), std::move(already_read));
}

Status HttpApi::listen(const std::string& address) { return core_->listen(address); }
std::uint16_t HttpApi::local_port() const { return core_->port(); }
void HttpApi::stop() { core_->stop(); }
std::size_t HttpApi::open_connections() const { return core_->open_connections(); }
std::string HttpApi::metrics_text() const { return core_->metrics_text(); }

}  // namespace nodenomad::net
