#include "http_client.hpp"

#include <chrono>
#include <string>

// GCC 12 reports "potential null pointer dereference" inside Asio's scheduler
// and executor code once it is inlined here (false positives in Boost, as in
// src/http/http_server.cpp); the warning stays on for the code below.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#pragma GCC diagnostic pop

namespace nodenomad::ctl {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using Clock = std::chrono::steady_clock;

// The largest answer read; a value is at most MAX_VALUE_SIZE (64MB at most),
// and /v1/cluster for thousands of shards stays far below it.
constexpr std::uint64_t kMaxReplyBodyBytes = 80ull << 20;

// Beast's parser errors mean the bytes were not (acceptable) HTTP;
// end_of_stream and partial_message mean the connection closed before a
// whole answer, which leaves the outcome unknown instead.
bool is_parse_error(beast::error_code ec) {
  if (ec.category() != http::make_error_code(http::error::end_of_stream).category()) {
    return false;
  }
  return ec != http::error::end_of_stream && ec != http::error::partial_message;
}

HttpReply to_reply(const http::response<http::string_body>& response) {
  HttpReply reply;
  reply.status = response.result_int();
  reply.body = response.body();
  if (auto it = response.find("X-NodeNomad-Version"); it != response.end()) {
    reply.version_header = std::string(it->value());
  }
  if (auto it = response.find("X-NodeNomad-Expires-In-Ms"); it != response.end()) {
    reply.expires_in_header = std::string(it->value());
  }
  return reply;
}

std::string describe(beast::error_code ec, std::uint64_t timeout_ms) {
  return ec == beast::error::timeout ? "timed out after " + std::to_string(timeout_ms) + " ms"
                                     : ec.message();
}

// One request's connect -> write -> read chain. Every step runs under the
// same deadline (tcp_stream's expiry), so --timeout-ms bounds the whole.
class Exchange {
 public:
  Exchange(net::io_context& ioc, const HttpRequestSpec& spec, const HostPort& endpoint,
           std::uint64_t timeout_ms)
      : stream_(ioc),
        timeout_ms_(timeout_ms),
        deadline_(Clock::now() + std::chrono::milliseconds(timeout_ms)) {
    request_.method(http::string_to_verb(spec.method));
    request_.target(spec.target);
    request_.version(11);
    request_.set(http::field::host, endpoint.to_string());
    request_.set(http::field::user_agent, "nodenomadctl/0.1");
    if (!spec.content_type.empty()) request_.set(http::field::content_type, spec.content_type);
    request_.body() = spec.body;
    request_.keep_alive(false);
    request_.prepare_payload();
    parser_.body_limit(kMaxReplyBodyBytes);
  }

  void start(const tcp::resolver::results_type& addresses) {
    stream_.expires_at(deadline_);
    stream_.async_connect(addresses, [this](beast::error_code ec, const tcp::endpoint&) {
      if (ec) return fail(TransportFailure::kCannotConnect, ec);
      stream_.expires_at(deadline_);
      http::async_write(stream_, request_,
                        [this](beast::error_code write_ec, std::size_t) { on_write(write_ec); });
    });
  }

  HttpResult take_result() { return std::move(result_); }

 private:
  void on_write(beast::error_code ec) {
    // Part of the request may have reached the server: from here on a
    // failure leaves the outcome unknown.
    if (ec) return fail(TransportFailure::kNoReply, ec);
    stream_.expires_at(deadline_);
    http::async_read(stream_, buffer_, parser_,
                     [this](beast::error_code read_ec, std::size_t) { on_read(read_ec); });
  }

  void on_read(beast::error_code ec) {
    if (ec) {
      return fail(is_parse_error(ec) ? TransportFailure::kBadReply : TransportFailure::kNoReply,
                  ec);
    }
    result_.reply = to_reply(parser_.get());
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void fail(TransportFailure failure, beast::error_code ec) {
    result_.failure = failure;
    result_.detail = describe(ec, timeout_ms_);
  }

  beast::tcp_stream stream_;
  std::uint64_t timeout_ms_;
  Clock::time_point deadline_;
  http::request<http::string_body> request_;
  http::response_parser<http::string_body> parser_;
  beast::flat_buffer buffer_;
  HttpResult result_;
};

}  // namespace

// ---- HttpSession ----

struct HttpSession::State {
  State(HostPort endpoint_in, std::uint64_t timeout)
      : endpoint(std::move(endpoint_in)), timeout_ms(timeout), stream(ioc) {}

  // Runs the queued operation to its end, ready for the next one.
  void run() {
    ioc.run();
    ioc.restart();
  }

  // Without blocking: did the node close the idle connection (or send
  // something unasked)? A peek that would block means it is still open.
  bool closed_by_peer() {
    tcp::socket& socket = stream.socket();
    beast::error_code ec;
    socket.non_blocking(true, ec);
    if (ec) return true;
    char byte = 0;
    socket.receive(net::buffer(&byte, 1), tcp::socket::message_peek, ec);
    beast::error_code ignored;
    socket.non_blocking(false, ignored);
    return ec != net::error::would_block;
  }

  void close() {
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream.close();
    buffer.clear();
    connected = false;
  }

  // Connects within `deadline`; an empty string on success, else why not.
  std::string connect(Clock::time_point deadline) {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    const auto addresses = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
    if (ec) return "cannot resolve " + endpoint.host + ": " + ec.message();
    stream.expires_at(deadline);
    stream.async_connect(addresses,
                         [&ec](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (ec) {
      stream.close();
      return describe(ec, timeout_ms);
    }
    connected = true;
    return {};
  }

  HostPort endpoint;
  std::uint64_t timeout_ms;
  net::io_context ioc;
  beast::tcp_stream stream;
  beast::flat_buffer buffer;
  bool connected = false;
};

HttpSession::HttpSession(HostPort endpoint, std::uint64_t timeout_ms)
    : state_(std::make_unique<State>(std::move(endpoint), timeout_ms)) {}

HttpSession::~HttpSession() {
  if (state_->connected) state_->close();
}

HttpResult HttpSession::request(const HttpRequestSpec& spec) {
  State& s = *state_;
  const auto deadline = Clock::now() + std::chrono::milliseconds(s.timeout_ms);
  HttpResult result;
  if (s.connected && s.closed_by_peer()) s.close();
  if (!s.connected) {
    if (std::string error = s.connect(deadline); !error.empty()) {
      result.failure = TransportFailure::kCannotConnect;
      result.detail = std::move(error);
      return result;
    }
  }
  http::request<http::string_body> request{http::string_to_verb(spec.method), spec.target, 11};
  request.set(http::field::host, s.endpoint.to_string());
  request.set(http::field::user_agent, "nodenomadctl/0.1");
  if (!spec.content_type.empty()) request.set(http::field::content_type, spec.content_type);
  request.body() = spec.body;
  request.keep_alive(true);
  request.prepare_payload();
  beast::error_code ec;
  s.stream.expires_at(deadline);
  http::async_write(s.stream, request, [&ec](beast::error_code e, std::size_t) { ec = e; });
  s.run();
  if (!ec) {
    http::response_parser<http::string_body> parser;
    parser.body_limit(kMaxReplyBodyBytes);
    s.stream.expires_at(deadline);
    http::async_read(s.stream, s.buffer, parser,
                     [&ec](beast::error_code e, std::size_t) { ec = e; });
    s.run();
    if (!ec) {
      result.reply = to_reply(parser.get());
      if (!parser.get().keep_alive()) s.close();
      return result;
    }
    result.failure = is_parse_error(ec) ? TransportFailure::kBadReply : TransportFailure::kNoReply;
  } else {
    // Part of the request may have reached the node: the outcome is unknown.
    result.failure = TransportFailure::kNoReply;
  }
  result.detail = describe(ec, s.timeout_ms);
  s.close();
  return result;
}

HttpResult http_request(const HostPort& endpoint, const HttpRequestSpec& request,
                        std::uint64_t timeout_ms) {
  net::io_context ioc;
  // Name resolution is synchronous (getaddrinfo has its own timeouts); an IP
  // literal, the usual endpoint, resolves without any lookup.
  tcp::resolver resolver(ioc);
  beast::error_code ec;
  const auto addresses = resolver.resolve(endpoint.host, std::to_string(endpoint.port), ec);
  if (ec) {
    HttpResult result;
    result.failure = TransportFailure::kCannotConnect;
    result.detail = "cannot resolve " + endpoint.host + ": " + ec.message();
    return result;
  }
  Exchange exchange(ioc, request, endpoint, timeout_ms);
  exchange.start(addresses);
  ioc.run();
  return exchange.take_result();
}

}  // namespace nodenomad::ctl
