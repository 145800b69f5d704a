// The HTTP request each nodenomadctl command makes (API.md is the contract).
#include <fmt/format.h>

#include <array>

#include "server/ctl_cli.hpp"
#include "server/json_text.hpp"

namespace nodenomad::ctl {
namespace {

bool is_unreserved(unsigned char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '.' || c == '_' || c == '~';
}

// "?a=1&b=2" from the parameters that are set; empty when none is.
std::string query(std::initializer_list<std::pair<std::string_view, std::string>> params) {
  std::string out;
  for (const auto& [name, value] : params) {
    if (value.empty()) continue;
    out += out.empty() ? '?' : '&';
    out += fmt::format("{}={}", name, value);
  }
  return out;
}

std::string optional_number(const std::optional<std::uint64_t>& n) {
  return n ? std::to_string(*n) : std::string();
}

}  // namespace

std::string percent_encode(std::string_view bytes) {
  static constexpr std::array<char, 16> kHex = {'0', '1', '2', '3', '4', '5', '6', '7',
                                                '8', '9', 'A', 'B', 'C', 'D', 'E', 'F'};
  std::string out;
  out.reserve(bytes.size() * 3);
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (is_unreserved(byte)) {
      out += c;
    } else {
      out += '%';
      out += kHex[byte >> 4];
      out += kHex[byte & 0xF];
    }
  }
  return out;
}

HttpRequestSpec build_request(const Invocation& inv) {
  const std::string kv_path = "/v1/kv/" + percent_encode(inv.key);
  switch (inv.command) {
    case Command::kPut:
      return {"PUT",
              kv_path + query({{"ttl", optional_number(inv.ttl_s)},
                               {"if_version", optional_number(inv.if_version)}}),
              inv.value, "application/octet-stream"};
    case Command::kGet:
      return {"GET", kv_path + query({{"consistency", inv.consistency.value_or("")}}), "", ""};
    case Command::kDel:
      return {"DELETE", kv_path + query({{"if_version", optional_number(inv.if_version)}}), "", ""};
    case Command::kStatus:
      return {"GET", "/v1/cluster", "", ""};
    case Command::kClusterJoin: {
      std::string body = "{\"id\":";
      server::append_json_string(body, inv.join_id);
      body += ",\"address\":";
      server::append_json_string(body, inv.join_address);
      body += '}';
      return {"POST", "/v1/cluster/nodes", std::move(body), "application/json"};
    }
    case Command::kHelp:
      break;
  }
  NN_UNREACHABLE("build_request for --help");
  return {};
}

std::string base64_encode(std::string_view bytes) {
  static constexpr std::string_view kAlphabet =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const std::uint32_t n = (static_cast<unsigned char>(bytes[i]) << 16) |
                            (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                            static_cast<unsigned char>(bytes[i + 2]);
    for (int shift = 18; shift >= 0; shift -= 6) out += kAlphabet[(n >> shift) & 0x3F];
  }
  const std::size_t rest = bytes.size() - i;
  if (rest > 0) {
    std::uint32_t n = static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i])) << 16;
    if (rest == 2) n |= static_cast<std::uint32_t>(static_cast<unsigned char>(bytes[i + 1])) << 8;
    out += kAlphabet[(n >> 18) & 0x3F];
    out += kAlphabet[(n >> 12) & 0x3F];
    out += rest == 2 ? kAlphabet[(n >> 6) & 0x3F] : '=';
    out += '=';
  }
  return out;
}

}  // namespace nodenomad::ctl
