// Parsers for the values a setting can take: sizes and durations with units,
// bounded whole numbers, node ids, host:port endpoints and the CLUSTER_NODES
// list. Pure functions of their text, shared by the server's configuration
// and nodenomadctl.
//
// Every error is kInvalidArgument whose message says what is wrong with the
// value and the accepted form ("not a size (unknown unit \"XB\"); expected
// ..."), but not which setting it came from: the caller knows the name and
// the source and puts them in front.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/server/node_config.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::server {

// Sizes use binary multiples whatever the spelling: 1KB = 1KiB = 1024 bytes,
// 1MB = 2^20, 1GB = 2^30, 1TB = 2^40 (as PostgreSQL and the seed's
// "MAX_WAL_SIZE=1GB" mean them). Units are case-insensitive: B, K, KB, KiB,
// M, MB, MiB, G, GB, GiB, T, TB, TiB; no unit means bytes. A whole number
// only; spaces around the number and before the unit are allowed.
Result<std::uint64_t> parse_size_bytes(std::string_view text);

// The shortest exact spelling parse_size_bytes reads back ("1GB", "1536KB",
// "1000B" stays "1000").
std::string format_size_bytes(std::uint64_t bytes);

// One or more whole numbers each with a unit ms, s, m or h (case-insensitive),
// summed: "500ms", "30s", "2m", "1m30s". A unit is required, so that "30"
// cannot silently mean 30 ms to one reader and 30 s to another.
Result<std::uint64_t> parse_duration_ms(std::string_view text);

// The shortest exact spelling ("30s", "1m30s", "1500ms").
std::string format_duration_ms(std::uint64_t ms);

// A decimal whole number in [min, max]; no sign, no unit.
Result<std::uint64_t> parse_bounded_uint(std::string_view text, std::uint64_t min,
                                         std::uint64_t max);

// 1 to 64 characters from [A-Za-z0-9._-]: the id travels in URLs
// (/v1/cluster/nodes/{id}) and in CLUSTER_NODES, whose separators are
// '@', ':' and ','.
Result<NodeId> parse_node_id(std::string_view text);

// "host:port": host is a DNS name or IPv4 literal, or an IPv6 literal in
// brackets ("[::1]:3000", stored without them); port 1 to 65535.
Result<HostPort> parse_host_port(std::string_view text);

// A host to bind or reach: a DNS name, an IPv4 literal, or an IPv6 literal
// with or without brackets (returned without them).
Result<std::string> parse_host(std::string_view text);

// CLUSTER_NODES: comma-separated entries "id@host:port" or the short form
// "name:port" (the member `name` at the host `name`). Spaces around entries
// are ignored. Duplicate ids and duplicate addresses are errors.
Result<std::vector<ClusterMember>> parse_cluster_nodes(std::string_view text);

// A switch: "on" or "off", in any case, spaces around allowed (true for on).
// Nothing else, so that "0", "no" or a typo cannot be read either way.
Result<bool> parse_on_off(std::string_view text);

// "on" or "off", as parse_on_off reads it back.
std::string_view format_on_off(bool on);

// A value quoted for an error message: in double quotes, with quotes,
// backslashes and bytes outside printable ASCII escaped, and cut after 80
// bytes so a pasted blob cannot flood the terminal.
std::string quote_for_message(std::string_view value);

}  // namespace nodenomad::server
