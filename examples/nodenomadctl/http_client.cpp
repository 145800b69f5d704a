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
    const auto& response = parser_.get();
    HttpReply reply;
    reply.status = response.result_int();
    reply.body = response.body();
    if (auto it = response.find("X-NodeNomad-Version"); it != response.end()) {
      reply.version_header = std::string(it->value());
    }
    if (auto it = response.find("X-NodeNomad-Expires-In-Ms"); it != response.end()) {
      reply.expires_in_header = std::string(it->value());
    }
    result_.reply = std::move(reply);
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
  }

  void fail(TransportFailure failure, beast::error_code ec) {
    result_.failure = failure;
    result_.detail = ec == beast::error::timeout
                         ? "timed out after " + std::to_string(timeout_ms_) + " ms"
                         : ec.message();
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
