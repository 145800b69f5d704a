// Byte-level text helpers of the HTTP front door: percent-decoding of paths
// and queries, and making arbitrary bytes safe to put in a JSON string. Pure
// functions, no Boost, shared by the router, the tests and the fuzzer.
#pragma once

#include <string>
#include <string_view>

#include "nodenomad/status.hpp"

namespace nodenomad::net {

// Percent-decodes `in` (RFC 3986: "%2F" -> "/", "%00" -> a zero byte; '+'
// stays '+', as in a path). kInvalidArgument, naming the byte offset, for a
// '%' not followed by two hex digits.
Result<std::string> percent_decode(std::string_view in);

// Keeps valid UTF-8 as it is and replaces each byte that does not start or
// continue a valid sequence with U+FFFD, so that any bytes can go into a JSON
// string without making the document invalid (a binary key echoed back).
std::string to_valid_utf8(std::string_view bytes);

// Appends `bytes` as a quoted JSON string: invalid UTF-8 becomes U+FFFD (as
// to_valid_utf8), and '"', '\\' and U+0000..U+001F are escaped. For the
// answers written without Boost.JSON (docs/http_api.md, "Migrations").
void append_json_string(std::string& out, std::string_view bytes);

// A node id as the cluster accepts one: 1 to 64 characters from
// [A-Za-z0-9._-] (it travels in paths: /v1/cluster/nodes/{id}).
bool is_valid_node_id(std::string_view id);

}  // namespace nodenomad::net
