// One HTTP/1.1 request to a NodeNomad node, synchronously, within a deadline
// (Boost.Beast; the only file of nodenomadctl that includes it).
//
// The failure kinds keep apart what a script must treat differently: nothing
// sent (cannot connect: safe to retry anything), sent without an answer (the
// outcome of a write is unknown), and an answer that is not HTTP.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "nodenomad/server/node_config.hpp"
#include "server/ctl_cli.hpp"

namespace nodenomad::ctl {

struct HttpResult {
  std::optional<HttpReply> reply;                               // set when an answer came back
  TransportFailure failure = TransportFailure::kCannotConnect;  // otherwise
  std::string detail;  // "Connection refused", "timed out after 10000 ms"
};

// Resolves, connects, sends and reads the answer; the whole exchange gives up
// at timeout_ms. Thread safety: none needed; each call has its own io_context.
HttpResult http_request(const HostPort& endpoint, const HttpRequestSpec& request,
                        std::uint64_t timeout_ms);

// Requests one after another on one keep-alive connection, which is opened
// on the first request and again whenever the node closed it (a restarted
// node, a `Connection: close` answer, an error). Before reusing the
// connection it checks, without blocking, whether the node closed it
// meanwhile, so that a connection the node dropped while idle is not
// mistaken for a request without an answer. Each request gives up at
// timeout_ms for connect, send and answer together.
//
// Thread safety: none; one session per thread (`nodenomadctl load` runs one
// per connection).
class HttpSession {
 public:
  HttpSession(HostPort endpoint, std::uint64_t timeout_ms);
  ~HttpSession();
  HttpSession(const HttpSession&) = delete;
  HttpSession& operator=(const HttpSession&) = delete;

  HttpResult request(const HttpRequestSpec& request);

 private:
  struct State;  // Beast's types stay in http_client.cpp
  std::unique_ptr<State> state_;
};

}  // namespace nodenomad::ctl
