// HttpApi: the Boost.Beast HTTP/JSON front door of a node (../shared/API.md,
// docs/http_api.md). It turns HTTP requests into ClientApi calls and their
// answers back into HTTP responses; it knows nothing of storage or Raft.
//
// Threads: every connection runs on its own strand of the io_context, so the
// io_context may be run by one thread or several. ClientApi callbacks may
// arrive on any thread: they are posted back onto the connection's strand
// before they touch it.
//
// Thread safety of the methods: serve(), stop() and metrics_text() may be
// called from any thread at any time. listen() and local_port() may be called
// from any thread, but listen() at most once and before stop().
//
// Lifetime rules (the io_context, the ClientApi and the HttpApi):
//   - The io_context and the ClientApi must outlive the HttpApi.
//   - Destroy the HttpApi only while no thread runs the io_context (before
//     run(), or after it returned). The destructor stops like stop() does.
//     Handlers still queued in the io_context hold the shared state, not the
//     HttpApi; if the io_context runs again they only close their sockets and
//     never call the ClientApi.
//   - A ClientApi callback may arrive at any time, even after stop() or after
//     the HttpApi is gone: after destruction it is dropped without touching
//     the io_context; before, it is posted and answers its request.
//   - The connection of a request in flight stays open until its callback
//     arrives (or until request_timeout_ms answers 504 for it).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

// GCC 12 -Wnull-dereference reports false positives inside Asio's inlined
// scheduler code; silenced for these headers only, so that every file that
// includes this one builds with warnings as errors.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#pragma GCC diagnostic pop

#include "nodenomad/client_api.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::net {

struct HttpOptions {
  // The largest request body: a PUT value (API.md's max_value_bytes) and
  // any JSON body. Over it: 413 value_too_large, connection closed.
  std::size_t max_value_bytes = 1024 * 1024;
  // Request line plus headers. Over it: 431 header_too_large, closed.
  std::size_t max_header_bytes = 16 * 1024;
  // A key once percent-decoded (API.md: 1 to 1024 bytes).
  std::size_t max_key_bytes = 1024;
  // From the first byte of a request to its last; then the connection is
  // closed (a slow client cannot hold a connection with a trickle).
  std::uint32_t read_timeout_ms = 30'000;
  // Writing one response; a client that does not read is disconnected.
  std::uint32_t write_timeout_ms = 30'000;
  // How long a connection may wait for the first byte of its next request
  // (keep-alive, and a new connection before its first request).
  std::uint32_t idle_timeout_ms = 60'000;
  // How long the ClientApi may take to answer before the client gets
  // 504 timeout (outcome unknown); a later answer is dropped.
  std::uint32_t request_timeout_ms = 30'000;
  // Open connections served at once; one more is answered 503 and closed.
  std::uint32_t max_connections = 1024;
  // Before closing a connection that may still have unread request bytes
  // (after 413, 431, 400, or a refusal), the server stops sending and reads
  // and discards what the client still sends, so that the kernel does not
  // answer those bytes with a reset that would destroy the error response
  // before the client reads it (Apache's "lingering close").
  std::uint32_t linger_timeout_ms = 2'000;
  std::size_t linger_max_bytes = 4 * 1024 * 1024;
  // The Retry-After header of 503 answers.
  std::uint32_t retry_after_s = 1;
};

class HttpServerCore;

class HttpApi {
 public:
  HttpApi(boost::asio::io_context& io, ClientApi& api, HttpOptions options);
  ~HttpApi();

  HttpApi(const HttpApi&) = delete;
  HttpApi& operator=(const HttpApi&) = delete;

  // Serves one accepted connection until it closes. `already_read` holds the
  // bytes the caller already took off the socket (the node's single port
  // tells peers from HTTP clients by the first bytes); they are parsed as
  // the start of the first request. The socket is moved onto a strand of
  // this HttpApi's io_context. After stop(), or with max_connections open,
  // the connection is answered 503 and closed.
  void serve(boost::asio::ip::tcp::socket socket, std::string already_read);

  // Opens an own listener ("host:port", "[v6]:port", port 0 = any free
  // port; host "localhost" or empty allowed) and serves what it accepts.
  // kInvalidArgument for a malformed address; kIOError naming the address
  // when it cannot be bound (taken, not local).
  Status listen(const std::string& address);
  // The listener's port; 0 before listen() succeeded.
  std::uint16_t local_port() const;

  // Graceful stop: the listener closes; a connection waiting for its next
  // request is closed; a request being read or in flight is answered (its
  // ClientApi callback still arrives and still answers) with
  // "Connection: close", then its connection closes. New connections handed
  // to serve() are answered 503. Idempotent. Returns at once: the closing
  // happens on the io_context, which must keep running until the connections
  // are gone (open_connections() == 0).
  void stop();

  // Connections currently served (refused ones not included).
  std::size_t open_connections() const;

  // Request metrics in Prometheus text format:
  //   nodenomad_http_requests_total{route,method,status}  counter
  //   nodenomad_http_request_duration_seconds{route}      histogram
  //   nodenomad_http_open_connections                      gauge
  //   nodenomad_http_connections_refused_total             counter
  // GET /metrics answers ClientApi::metrics_text() followed by this.
  std::string metrics_text() const;

 private:
  std::shared_ptr<HttpServerCore> core_;
};

}  // namespace nodenomad::net
