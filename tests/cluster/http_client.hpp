// A minimal blocking HTTP/1.1 client over POSIX sockets for the real-process
// tests: every step (connect, send, receive) has a deadline, and a failed
// request says whether any byte of it left, which is what separates "not
// applied" from "outcome unknown" in a recorded history.
//
// RawSocket is the layer below, for tests that send bytes which are not HTTP
// (peer-protocol garbage, a malformed request line) and watch what comes back.
//
// Thread safety: none; one HttpConnection or RawSocket per thread. Sockets
// are opened with SOCK_CLOEXEC, so a node process started while a client
// thread holds a connection does not inherit it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace nodenomad::process_testing {

using SteadyClock = std::chrono::steady_clock;
using Deadline = SteadyClock::time_point;

inline Deadline deadline_after(std::chrono::milliseconds timeout) {
  return SteadyClock::now() + timeout;
}

class RawSocket {
 public:
  enum class Read { kData, kEof, kTimeout, kError };

  RawSocket() = default;
  ~RawSocket() { close(); }
  RawSocket(RawSocket&& other) noexcept : fd_(other.fd_) { other.fd_ = -1; }
  RawSocket& operator=(RawSocket&& other) noexcept;
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;

  // Connects to 127.0.0.1:port; on failure fills `error` (e.g. "connect:
  // Connection refused") and leaves the socket closed.
  bool connect(std::uint16_t port, Deadline deadline, std::string& error);
  // Sends everything; false with `error` on a reset, a closed peer or the
  // deadline. `sent_any` becomes true once a byte was accepted by the kernel.
  bool send_all(std::string_view bytes, Deadline deadline, bool& sent_any, std::string& error);
  // Appends what arrives (at most 64 KiB) to `out`.
  Read read_some(std::string& out, Deadline deadline, std::string& error);
  // True once the peer closed (EOF or reset) before the deadline; whatever
  // arrives meanwhile is appended to `received`.
  bool wait_closed(Deadline deadline, std::string& received);
  // Without blocking: has the peer closed its side (or reset) already? Used
  // before reusing a keep-alive connection to a node that may have died.
  bool peer_closed_now() const;

  bool is_open() const { return fd_ >= 0; }
  // The local port, which the server's log lines name ("to 127.0.0.1:P").
  std::uint16_t local_port() const;
  void close();

 private:
  // Waits for `events` on the socket; false on the deadline.
  bool wait_for(short events, Deadline deadline) const;

  int fd_ = -1;
};

struct HttpReply {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;

  std::optional<std::string> header(const std::string& lower_case_name) const;
  bool closes_connection() const;
};

// Either a reply, or why there is none and whether the request may have
// reached the server.
struct HttpResult {
  std::optional<HttpReply> reply;
  bool request_sent = false;  // some byte left: without a reply the outcome is unknown
  std::string error;
};

// Reads one Content-Length framed response from `socket`, appending to and
// consuming from `buffer` (keep-alive leftovers stay there). nullopt with
// `error` on EOF, reset, the deadline or a response it cannot parse.
std::optional<HttpReply> read_http_reply(RawSocket& socket, std::string& buffer, Deadline deadline,
                                         std::string& error);

// "PUT /v1/kv/k HTTP/1.1" with Host and Content-Length, then the body.
std::string make_http_request(std::string_view method, std::string_view target,
                              std::string_view body = {}, std::string_view extra_headers = {});

// Keeps one keep-alive connection to one node, reconnecting when the node
// closed it (a restarted node, a Connection: close answer).
class HttpConnection {
 public:
  HttpConnection(std::uint16_t port, std::chrono::milliseconds timeout)
      : port_(port), timeout_(timeout) {}

  HttpResult request(std::string_view method, std::string_view target, std::string_view body = {});
  // Sends bytes as they are and reads one response.
  HttpResult raw_request(std::string_view bytes);

  std::uint16_t port() const { return port_; }

 private:
  std::uint16_t port_;
  std::chrono::milliseconds timeout_;
  RawSocket socket_;
  std::string buffer_;
};

// One request on a fresh connection (probes, readiness checks).
HttpResult http_once(std::uint16_t port, std::string_view method, std::string_view target,
                     std::string_view body, std::chrono::milliseconds timeout);

// Percent-encodes every byte outside A-Z a-z 0-9 - . _ ~ (for keys in paths).
std::string percent_encode(std::string_view bytes);

}  // namespace nodenomad::process_testing
