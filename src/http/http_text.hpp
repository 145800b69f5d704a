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

}  // namespace nodenomad::net
