// What nodenomadctl prints and exits with for each answer.
#include <fmt/format.h>

#include <boost/json.hpp>
#include <charconv>

#include "server/config_values.hpp"
#include "server/ctl_cli.hpp"
#include "server/json_text.hpp"

namespace nodenomad::ctl {
namespace {

namespace json = boost::json;

constexpr std::size_t kMaxShownBodyBytes = 200;

std::optional<json::object> parse_object(std::string_view body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (ec || !value.is_object()) return std::nullopt;
  return std::move(value.as_object());
}

std::optional<std::uint64_t> uint_field(const json::object& object, std::string_view name) {
  const json::value* v = object.if_contains(name);
  if (v == nullptr) return std::nullopt;
  if (v->is_uint64()) return v->as_uint64();
  if (v->is_int64() && v->as_int64() >= 0) return static_cast<std::uint64_t>(v->as_int64());
  return std::nullopt;
}

std::string string_field(const json::object& object, std::string_view name) {
  const json::value* v = object.if_contains(name);
  return v != nullptr && v->is_string() ? std::string(v->as_string()) : std::string();
}

std::optional<std::uint64_t> parse_header_number(const std::optional<std::string>& header) {
  if (!header) return std::nullopt;
  std::uint64_t n = 0;
  const char* end = header->data() + header->size();
  const auto [ptr, ec] = std::from_chars(header->data(), end, n);
  if (ec != std::errc() || ptr != end) return std::nullopt;
  return n;
}

// Text from the server shown on a terminal: control bytes could move the
// cursor or change colours, so they become '?'; long bodies are cut.
std::string sanitize(std::string_view text) {
  std::string out(text.substr(0, kMaxShownBodyBytes));
  for (char& c : out) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7f) c = '?';
  }
  if (text.size() > kMaxShownBodyBytes) out += "...";
  return out;
}

std::string json_error(std::string_view code, std::string_view message) {
  std::string out = "{\"error\":{\"code\":";
  server::append_json_string(out, code);
  out += ",\"message\":";
  server::append_json_string(out, message);
  out += "}}\n";
  return out;
}

std::string with_newline(std::string text) {
  if (text.empty() || text.back() != '\n') text += '\n';
  return text;
}

bool is_write(Command command) {
  return command == Command::kPut || command == Command::kDel || command == Command::kClusterJoin;
}

std::string address_of(const Invocation& inv) { return inv.endpoint.to_string(); }

// Adds "key" or, for bytes that JSON strings cannot carry, "key_base64".
void append_bytes_field(std::string& out, std::string_view name, std::string_view bytes) {
  const bool text = server::is_valid_utf8(bytes);
  server::append_json_string(out, text ? std::string(name) : std::string(name) + "_base64");
  out += ':';
  server::append_json_string(out, text ? std::string(bytes) : base64_encode(bytes));
}

CtlOutput render_error_reply(const Invocation& inv, const HttpReply& reply, int exit_code) {
  const auto body = parse_object(reply.body);
  const json::object* error = nullptr;
  if (body && body->contains("error") && body->at("error").is_object()) {
    error = &body->at("error").as_object();
  }
  std::string code = error ? string_field(*error, "code") : "";
  std::string message = error ? string_field(*error, "message") : sanitize(reply.body);
  if (code.empty()) code = fmt::format("http_{}", reply.status);
  std::string hint;
  if (exit_code == kExitVersionMismatch) {
    const auto current = body ? uint_field(*body, "current_version") : std::nullopt;
    if (current) hint = fmt::format(" (current version {})", *current);
  } else if (exit_code == kExitUnavailable) {
    hint = "; not applied, safe to retry";
  } else if (exit_code == kExitUnknownOutcome && is_write(inv.command)) {
    hint = "; the outcome is unknown: the write may or may not have been applied";
  }
  CtlOutput output;
  output.exit_code = exit_code;
  output.err = fmt::format("nodenomadctl: {}: {}{}\n", sanitize(code), sanitize(message), hint);
  if (inv.json) output.out = error ? with_newline(reply.body) : json_error(code, message);
  return output;
}

CtlOutput render_get(const Invocation& inv, const HttpReply& reply) {
  const auto version = parse_header_number(reply.version_header);
  const auto expires_in_ms = parse_header_number(reply.expires_in_header);
  CtlOutput output;
  if (!inv.json) {
    output.out = reply.body;
    if (inv.verbose && version) output.err += fmt::format("version {}\n", *version);
    if (inv.verbose && expires_in_ms)
      output.err += fmt::format("expires in {} ms\n", *expires_in_ms);
    return output;
  }
  output.out = "{";
  append_bytes_field(output.out, "key", inv.key);
  output.out += ',';
  append_bytes_field(output.out, "value", reply.body);
  if (version) output.out += fmt::format(",\"version\":{}", *version);
  if (expires_in_ms) output.out += fmt::format(",\"expires_in_ms\":{}", *expires_in_ms);
  output.out += "}\n";
  return output;
}

CtlOutput unexpected_reply(const Invocation& inv, const HttpReply& reply) {
  return render_transport_failure(
      inv, TransportFailure::kBadReply,
      fmt::format("HTTP {} with an unexpected body: {}", reply.status, sanitize(reply.body)));
}

CtlOutput render_del(const Invocation& inv, const HttpReply& reply) {
  const auto body = parse_object(reply.body);
  const json::value* deleted = body ? body->if_contains("deleted") : nullptr;
  if (deleted == nullptr || !deleted->is_bool()) return unexpected_reply(inv, reply);
  CtlOutput output;
  if (inv.json) output.out = with_newline(reply.body);
  if (deleted->as_bool()) {
    if (!inv.json) output.out = "deleted\n";
    return output;
  }
  output.exit_code = kExitNotFound;
  output.err =
      fmt::format("nodenomadctl: not_found: no key {}\n", server::quote_for_message(inv.key));
  return output;
}

CtlOutput render_success(const Invocation& inv, const HttpReply& reply) {
  CtlOutput output;
  switch (inv.command) {
    case Command::kPut: {
      const auto body = parse_object(reply.body);
      const auto version = body ? uint_field(*body, "version") : std::nullopt;
      if (!version) return unexpected_reply(inv, reply);
      output.out = inv.json ? with_newline(reply.body) : fmt::format("OK (version {})\n", *version);
      return output;
    }
    case Command::kGet:
      return render_get(inv, reply);
    case Command::kDel:
      return render_del(inv, reply);
    case Command::kStatus: {
      if (inv.json) return CtlOutput{with_newline(reply.body), "", kExitOk};
      auto table = render_cluster_table(reply.body);
      if (!table.is_ok()) return unexpected_reply(inv, reply);
      output.out = std::move(*table);
      return output;
    }
    case Command::kClusterJoin: {
      std::string synthesized = "{\"id\":";
      server::append_json_string(synthesized, inv.join_id);
      synthesized += ",\"address\":";
      server::append_json_string(synthesized, inv.join_address);
      synthesized += "}\n";
      output.out = !inv.json
                       ? fmt::format("OK: {} ({}) is a member\n", inv.join_id, inv.join_address)
                   : reply.body.empty() ? synthesized
                                        : with_newline(reply.body);
      return output;
    }
    case Command::kHelp:
      break;
  }
  NN_UNREACHABLE("a reply to --help");
  return output;
}

}  // namespace

int exit_code_for_http_status(unsigned status) {
  if (status >= 200 && status < 300) return kExitOk;
  switch (status) {
    case 400:
      return kExitUsage;
    case 404:
      return kExitNotFound;
    case 412:
      return kExitVersionMismatch;
    case 413:
      return kExitUsage;
    case 503:
      return kExitUnavailable;
    case 504:
      return kExitUnknownOutcome;
    default:
      return kExitOther;
  }
}

CtlOutput render_reply(const Invocation& inv, const HttpReply& reply) {
  const int exit_code = exit_code_for_http_status(reply.status);
  if (exit_code != kExitOk) return render_error_reply(inv, reply, exit_code);
  return render_success(inv, reply);
}

CtlOutput render_transport_failure(const Invocation& inv, TransportFailure failure,
                                   std::string_view detail) {
  CtlOutput output;
  std::string code;
  std::string message;
  switch (failure) {
    case TransportFailure::kCannotConnect:
      output.exit_code = kExitCannotConnect;
      code = "cannot_connect";
      message = fmt::format("cannot connect to {}: {}; nothing was sent", address_of(inv), detail);
      break;
    case TransportFailure::kNoReply:
      output.exit_code = kExitUnknownOutcome;
      code = "unknown_outcome";
      message =
          fmt::format("no answer from {}: {}{}", address_of(inv), detail,
                      is_write(inv.command) ? "; the write may or may not have been applied" : "");
      break;
    case TransportFailure::kBadReply:
      output.exit_code = kExitOther;
      code = "bad_reply";
      message = fmt::format("bad reply from {}: {}", address_of(inv), detail);
      break;
  }
  output.err = fmt::format("nodenomadctl: {}\n", message);
  if (inv.json) output.out = json_error(code, message);
  return output;
}

CtlOutput render_usage_error(bool json, std::string_view message) {
  CtlOutput output;
  output.exit_code = kExitUsage;
  output.err = fmt::format("nodenomadctl: {}\nRun 'nodenomadctl --help' for usage.\n", message);
  if (json) output.out = json_error("usage", message);
  return output;
}

}  // namespace nodenomad::ctl
