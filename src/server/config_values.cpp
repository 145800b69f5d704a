#include "server/config_values.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>
#include <optional>
#include <set>
#include <utility>

namespace nodenomad {

namespace {

std::string format_address(const std::string& host, std::uint16_t port) {
  // An IPv6 literal contains ':' and would be ambiguous without brackets.
  if (host.find(':') != std::string::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

}  // namespace

std::string HostPort::to_string() const { return format_address(host, port); }
std::string ClusterMember::address() const { return format_address(host, port); }

namespace server {
namespace {

constexpr std::uint64_t kMaxU64 = std::numeric_limits<std::uint64_t>::max();
constexpr std::size_t kMaxNodeIdBytes = 64;
constexpr std::size_t kMaxHostBytes = 253;  // the DNS limit for a full name
// A bound on CLUSTER_NODES so that a runaway value cannot build a huge ring.
constexpr std::size_t kMaxClusterNodes = 256;
constexpr std::size_t kMaxQuotedBytes = 80;

constexpr std::string_view kSizeForm =
    "expected a whole number with an optional unit B, KB, MB, GB or TB "
    "(1KB = 1024 bytes; e.g. 1GB)";
constexpr std::string_view kDurationForm =
    "expected a whole number with a unit ms, s, m or h, or a sum such as 1m30s "
    "(e.g. 30s)";
constexpr std::string_view kHostPortForm =
    "expected host:port (e.g. 127.0.0.1:3000, node-1:3000 or [::1]:3000)";
constexpr std::string_view kClusterNodesForm =
    "expected comma-separated id@host:port or name:port entries "
    "(e.g. node-1@127.0.0.1:3000,node-2@127.0.0.1:3001)";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Reads the leading decimal digits of `s` and advances `s` past them. An
// overflowing number still consumes all its digits, so the caller can say
// "too large" rather than "unknown unit".
struct DigitsRead {
  bool found = false;
  bool overflow = false;
  std::uint64_t value = 0;
};

DigitsRead read_digits(std::string_view& s) {
  DigitsRead r;
  while (!s.empty() && is_digit(s.front())) {
    r.found = true;
    const auto digit = static_cast<std::uint64_t>(s.front() - '0');
    if (r.value > (kMaxU64 - digit) / 10) r.overflow = true;
    if (!r.overflow) r.value = r.value * 10 + digit;
    s.remove_prefix(1);
  }
  return r;
}

// The reason a text holds no leading whole number, for sizes and durations.
std::string no_number_reason(std::string_view t) {
  if (t.empty()) return "empty";
  if (t.front() == '-') return "negative";
  return "no number";
}

Status size_error(std::string_view why) {
  return Status::invalid_argument(fmt::format("not a size ({}); {}", why, kSizeForm));
}

Status duration_error(std::string_view why) {
  return Status::invalid_argument(fmt::format("not a duration ({}); {}", why, kDurationForm));
}

std::optional<std::uint64_t> size_multiplier(std::string_view unit) {
  static const std::array<std::pair<std::string_view, std::uint64_t>, 14> kUnits = {{
      {"", 1},
      {"b", 1},
      {"k", 1ull << 10},
      {"kb", 1ull << 10},
      {"kib", 1ull << 10},
      {"m", 1ull << 20},
      {"mb", 1ull << 20},
      {"mib", 1ull << 20},
      {"g", 1ull << 30},
      {"gb", 1ull << 30},
      {"gib", 1ull << 30},
      {"t", 1ull << 40},
      {"tb", 1ull << 40},
      {"tib", 1ull << 40},
  }};
  const std::string key = lower(unit);
  for (const auto& [name, mult] : kUnits) {
    if (name == key) return mult;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> duration_multiplier(std::string_view unit) {
  const std::string key = lower(unit);
  if (key == "ms") return 1;
  if (key == "s") return 1000;
  if (key == "m") return 60'000;
  if (key == "h") return 3'600'000;
  return std::nullopt;
}

bool is_valid_host_name(std::string_view host) {
  if (host.empty() || host.size() > kMaxHostBytes) return false;
  if (host.front() == '.' || host.back() == '.' || host.find("..") != std::string_view::npos) {
    return false;
  }
  // Underscores are not DNS-legal but docker-compose service names use them,
  // and the seed's short form names hosts after services.
  return std::all_of(host.begin(), host.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '-' || c == '.' || c == '_';
  });
}

bool is_valid_ipv6_text(std::string_view host) {
  if (host.size() < 2 || host.find(':') == std::string_view::npos) return false;
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isxdigit(static_cast<unsigned char>(c)) != 0 || c == ':' || c == '.';
  });
}

// Parses "host:port" into `out`; the reason when it is not one.
std::optional<std::string> read_host_port(std::string_view text, HostPort& out) {
  if (text.empty()) return "empty";
  std::string_view host;
  std::string_view port;
  if (text.front() == '[') {
    const auto close = text.find(']');
    if (close == std::string_view::npos) return "no closing ']'";
    host = text.substr(1, close - 1);
    if (!is_valid_ipv6_text(host)) return "not an IPv6 address in the brackets";
    if (text.substr(close + 1, 1) != ":") return "no port";
    port = text.substr(close + 2);
  } else {
    const auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return "no port";
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return "an IPv6 host needs brackets";
    if (host.empty()) return "no host";
    if (!is_valid_host_name(host)) return fmt::format("bad host {}", quote_for_message(host));
  }
  auto port_value = parse_bounded_uint(port, 1, 65535);
  if (!port_value.is_ok()) return fmt::format("bad port {}", quote_for_message(port));
  out.host = std::string(host);
  out.port = static_cast<std::uint16_t>(*port_value);
  return std::nullopt;
}

// Parses one CLUSTER_NODES entry into `out`; the reason when it is not one.
std::optional<std::string> read_member(std::string_view entry, ClusterMember& out) {
  HostPort address;
  const auto at = entry.find('@');
  std::string_view id_text;
  if (at != std::string_view::npos) {
    id_text = entry.substr(0, at);
    if (auto why = read_host_port(entry.substr(at + 1), address)) return why;
  } else {
    if (auto why = read_host_port(entry, address)) return why;
    id_text = address.host;
  }
  auto id = parse_node_id(id_text);
  if (!id.is_ok()) {
    if (at == std::string_view::npos) {
      return "the short form name:port needs a host name usable as a node id; "
             "write id@host:port";
    }
    return fmt::format("bad node id {}", quote_for_message(id_text));
  }
  out = ClusterMember{std::move(*id), std::move(address.host), address.port};
  return std::nullopt;
}

Status cluster_nodes_error(std::string_view why) {
  return Status::invalid_argument(
      fmt::format("not a member list ({}); {}", why, kClusterNodesForm));
}

// Duplicate ids or addresses, compared case-insensitively for hosts (DNS is).
Status check_unique_members(const std::vector<ClusterMember>& members) {
  std::set<NodeId> ids;
  std::set<std::string> addresses;
  for (const auto& m : members) {
    if (!ids.insert(m.id).second) {
      return cluster_nodes_error(fmt::format("node id {} appears twice", m.id.str()));
    }
    if (!addresses.insert(lower(m.address())).second) {
      return cluster_nodes_error(fmt::format("address {} appears twice", m.address()));
    }
  }
  return Status::ok();
}

}  // namespace

Result<std::uint64_t> parse_size_bytes(std::string_view text) {
  std::string_view t = trim(text);
  auto digits = read_digits(t);
  if (!digits.found) return size_error(no_number_reason(trim(text)));
  if (digits.overflow) return size_error("too large");
  if (!t.empty() && (t.front() == '.' || t.front() == ',')) {
    return size_error("not a whole number; use a smaller unit");
  }
  const std::string_view unit = trim(t);
  const auto mult = size_multiplier(unit);
  if (!mult) return size_error(fmt::format("unknown unit {}", quote_for_message(unit)));
  if (digits.value > kMaxU64 / *mult) return size_error("too large");
  return digits.value * *mult;
}

std::string format_size_bytes(std::uint64_t bytes) {
  static const std::array<std::pair<std::string_view, std::uint64_t>, 4> kUnits = {
      {{"TB", 1ull << 40}, {"GB", 1ull << 30}, {"MB", 1ull << 20}, {"KB", 1ull << 10}}};
  if (bytes == 0) return "0";
  for (const auto& [unit, mult] : kUnits) {
    if (bytes % mult == 0) return fmt::format("{}{}", bytes / mult, unit);
  }
  return std::to_string(bytes);
}

Result<std::uint64_t> parse_duration_ms(std::string_view text) {
  std::string_view t = trim(text);
  if (t.empty() || !is_digit(t.front())) return duration_error(no_number_reason(t));
  std::uint64_t total = 0;
  while (!t.empty()) {
    auto digits = read_digits(t);
    if (!digits.found) return duration_error("a number must follow each unit");
    if (digits.overflow) return duration_error("too large");
    if (!t.empty() && (t.front() == '.' || t.front() == ',')) {
      return duration_error("not a whole number; use a smaller unit");
    }
    std::size_t unit_len = 0;
    while (unit_len < t.size() && is_alpha(t[unit_len])) ++unit_len;
    const std::string_view unit = t.substr(0, unit_len);
    if (unit.empty()) return duration_error("a unit is required");
    const auto mult = duration_multiplier(unit);
    if (!mult) return duration_error(fmt::format("unknown unit {}", quote_for_message(unit)));
    if (digits.value > (kMaxU64 - total) / *mult) return duration_error("too large");
    total += digits.value * *mult;
    t.remove_prefix(unit_len);
  }
  return total;
}

std::string format_duration_ms(std::uint64_t ms) {
  if (ms % 1000 != 0 || ms == 0) return fmt::format("{}ms", ms);
  std::uint64_t seconds = ms / 1000;
  std::string out;
  if (seconds >= 3600) out += fmt::format("{}h", seconds / 3600);
  seconds %= 3600;
  if (seconds >= 60) out += fmt::format("{}m", seconds / 60);
  seconds %= 60;
  if (seconds > 0) out += fmt::format("{}s", seconds);
  return out;
}

Result<std::uint64_t> parse_bounded_uint(std::string_view text, std::uint64_t min,
                                         std::uint64_t max) {
  std::string_view t = trim(text);
  const std::string form = fmt::format("expected a whole number from {} to {}", min, max);
  auto digits = read_digits(t);
  if (!digits.found || !t.empty()) {
    return Status::invalid_argument(fmt::format("not a whole number; {}", form));
  }
  if (digits.overflow || digits.value < min || digits.value > max) {
    return Status::invalid_argument(fmt::format("out of range; {}", form));
  }
  return digits.value;
}

Result<NodeId> parse_node_id(std::string_view text) {
  const bool chars_ok = std::all_of(text.begin(), text.end(), [](char c) {
    return is_alpha(c) || is_digit(c) || c == '.' || c == '_' || c == '-';
  });
  if (text.empty() || text.size() > kMaxNodeIdBytes || !chars_ok) {
    return Status::invalid_argument(
        "not a node id; expected 1 to 64 letters, digits, '.', '_' or '-' (e.g. node-1)");
  }
  return NodeId(std::string(text));
}

Result<HostPort> parse_host_port(std::string_view text) {
  HostPort out;
  if (auto why = read_host_port(trim(text), out)) {
    return Status::invalid_argument(fmt::format("not an address ({}); {}", *why, kHostPortForm));
  }
  return out;
}

Result<std::string> parse_host(std::string_view text) {
  std::string_view host = trim(text);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (is_valid_ipv6_text(host) || is_valid_host_name(host)) return std::string(host);
  return Status::invalid_argument(
      "not a host; expected a host name or an IP address (e.g. 0.0.0.0, 127.0.0.1, node-1 "
      "or ::1)");
}

Result<std::vector<ClusterMember>> parse_cluster_nodes(std::string_view text) {
  std::vector<ClusterMember> members;
  std::string_view rest = text;
  if (trim(rest).empty()) return cluster_nodes_error("empty");
  for (std::size_t number = 1;; ++number) {
    const auto comma = rest.find(',');
    const std::string_view entry = trim(rest.substr(0, comma));
    if (number > kMaxClusterNodes) {
      return cluster_nodes_error(fmt::format("more than {} entries", kMaxClusterNodes));
    }
    if (entry.empty()) return cluster_nodes_error(fmt::format("entry {} is empty", number));
    ClusterMember member;
    if (auto why = read_member(entry, member)) {
      return cluster_nodes_error(
          fmt::format("entry {} {}: {}", number, quote_for_message(entry), *why));
    }
    members.push_back(std::move(member));
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  NN_RETURN_IF_ERROR(check_unique_members(members));
  return members;
}

Result<bool> parse_on_off(std::string_view text) {
  const std::string word = lower(trim(text));
  if (word == "on") return true;
  if (word == "off") return false;
  return Status::invalid_argument("not on or off; expected on or off");
}

std::string_view format_on_off(bool on) { return on ? "on" : "off"; }

std::string quote_for_message(std::string_view value) {
  std::string out = "\"";
  const std::string_view shown = value.substr(0, kMaxQuotedBytes);
  for (const char c : shown) {
    const auto byte = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += fmt::format("\\x{:02x}", byte);
    } else {
      out += c;
    }
  }
  out += '"';
  if (value.size() > shown.size())
    out += fmt::format(" (and {} more bytes)", value.size() - shown.size());
  return out;
}

}  // namespace server
}  // namespace nodenomad
