// nodenomadctl's logic without its I/O: command-line parsing, the HTTP
// request each command makes, and what each answer prints and exits with.
// examples/nodenomadctl/ adds the socket and the terminal; everything here
// is a pure function, so the tests need neither.
//
// Exit codes are a contract for scripts (docs/cli.md):
//   0 ok; 1 not found; 2 usage error (also the server's 400 and 413);
//   3 version mismatch; 4 unavailable, not applied, safe to retry (503);
//   5 outcome unknown (504, or no answer after the request was sent);
//   6 cannot connect (nothing was sent); 7 any other failure.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nodenomad/server/node_config.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::ctl {

enum ExitCode : int {
  kExitOk = 0,
  kExitNotFound = 1,
  kExitUsage = 2,
  kExitVersionMismatch = 3,
  kExitUnavailable = 4,
  kExitUnknownOutcome = 5,
  kExitCannotConnect = 6,
  kExitOther = 7,
};

enum class Command { kHelp, kPut, kGet, kDel, kStatus, kClusterJoin };

inline constexpr std::string_view kEndpointEnv = "NODENOMAD_ENDPOINT";
inline constexpr std::uint64_t kDefaultTimeoutMs = 10'000;

struct Invocation {
  Command command = Command::kHelp;
  HostPort endpoint{"127.0.0.1", 3000};          // --endpoint, NODENOMAD_ENDPOINT
  bool json = false;                             // --json
  bool verbose = false;                          // --verbose, -v
  std::uint64_t timeout_ms = kDefaultTimeoutMs;  // --timeout-ms

  std::string key;                          // put, get, del
  std::string value;                        // put (unless value_from_stdin)
  bool value_from_stdin = false;            // put KEY -
  std::optional<std::uint64_t> ttl_s;       // put --ttl
  std::optional<std::uint64_t> if_version;  // put, del --if-version
  std::optional<std::string> consistency;   // get --consistency
  std::string join_id;                      // cluster join ID ADDRESS
  std::string join_address;
};

// Parses argv (argv[0] is the program). Options may come before or after the
// command; "--" ends them, so a value may start with '-'. kInvalidArgument
// with a one-line message on any usage error (exit kExitUsage).
Result<Invocation> parse_ctl_args(int argc, const char* const* argv, const EnvLookup& env);

std::string ctl_help();

struct HttpRequestSpec {
  std::string method;  // "GET", "PUT", "DELETE", "POST"
  std::string target;  // "/v1/kv/a%2Fb?ttl=5"
  std::string body;
  std::string content_type;  // empty when there is no body
};

// Every byte outside RFC 3986's unreserved set (A-Z a-z 0-9 - . _ ~) becomes
// %XX, so any key, even binary or with '/', '?', '%', reaches the server whole.
std::string percent_encode(std::string_view bytes);

// Precondition: the invocation's command is not kHelp; for put from stdin,
// `value` has been filled.
HttpRequestSpec build_request(const Invocation& invocation);

struct HttpReply {
  unsigned status = 0;
  std::string body;
  std::optional<std::string> version_header;     // X-NodeNomad-Version
  std::optional<std::string> expires_in_header;  // X-NodeNomad-Expires-In-Ms
};

// What the program prints and returns.
struct CtlOutput {
  std::string out;  // stdout, written as bytes (a get's value is binary-safe)
  std::string err;  // stderr
  int exit_code = kExitOk;
};

enum class TransportFailure {
  kCannotConnect,  // name resolution or connect failed or timed out: nothing was sent
  kNoReply,        // sent, then a timeout or a closed connection: outcome unknown
  kBadReply,       // the bytes that came back are not a valid HTTP response
};

int exit_code_for_http_status(unsigned status);

CtlOutput render_reply(const Invocation& invocation, const HttpReply& reply);
CtlOutput render_transport_failure(const Invocation& invocation, TransportFailure failure,
                                   std::string_view detail);
// A usage error: the message on stderr (or as JSON with --json), exit 2.
CtlOutput render_usage_error(bool json, std::string_view message);

// The readable tables of `status` from a GET /v1/cluster body. kInvalidArgument
// when the body is not a JSON object; missing or odd fields show as "-".
Result<std::string> render_cluster_table(std::string_view cluster_json);

// RFC 4648 base64, for values that are not UTF-8 in --json output.
std::string base64_encode(std::string_view bytes);

}  // namespace nodenomad::ctl
