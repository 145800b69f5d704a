// JSON string text written by hand: the log sink must not allocate a DOM per
// line, and must decide itself what happens to bytes that are not UTF-8
// (Boost.JSON's serializer copies them through, producing invalid JSON).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace nodenomad::server {

// The length of the valid UTF-8 sequence starting at text[pos] (1 to 4), or 0
// when the bytes there are not one (RFC 3629: no overlong forms, no
// surrogates, nothing above U+10FFFF). Precondition: pos < text.size().
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos);

bool is_valid_utf8(std::string_view text);

// Appends `text` as a quoted JSON string. Escapes '"', '\\' and U+0000..U+001F
// and U+007F; copies valid UTF-8 through; writes \ufffd for each byte that is
// not part of valid UTF-8.
void append_json_string(std::string& out, std::string_view text);

// The longest prefix of `text` of at most `max_bytes` that does not end in
// the middle of a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes);

}  // namespace nodenomad::server
