// The server's log format: one JSON object per line on stderr (or any file
// descriptor), for log collectors that read JSON lines.
//
//   {"ts":"2024-05-01T12:34:56.789Z","level":"warn","node":"node-1",
//    "component":"wal","msg":"torn tail truncated at offset 4096"}
//
// (one line in the output). `ts` is UTC with milliseconds. Strings are
// escaped so every line is valid JSON in pure ASCII plus the message's own
// valid UTF-8: '"', '\\' and control characters (U+0000..U+001F, U+007F) are
// escaped (\n, \t, ... or \u00XX), and every byte that is not part of valid
// UTF-8 becomes \ufffd, the replacement character, because JSON strings are
// Unicode and cannot carry raw bytes. A message over kMaxLogMessageBytes is
// cut at a character boundary and the line says how much with
// "truncated_bytes".
//
// Thread safety: the sink may be called from any number of threads at once;
// each line reaches the descriptor whole, in one write() unless the kernel
// accepts it in parts.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>

#include "nodenomad/logging.hpp"

namespace nodenomad {

inline constexpr std::size_t kMaxLogMessageBytes = 16 * 1024;

// A sink for set_log_sink() writing JSON lines to `fd` (not owned; it must
// stay open while the sink is installed). Write errors are ignored: logging
// must never stop the node.
LogSink make_json_log_sink(std::string node_id, int fd = 2);

// One line, with its trailing '\n'.
std::string format_json_log_line(std::chrono::system_clock::time_point ts, LogLevel level,
                                 std::string_view node_id, std::string_view component,
                                 std::string_view message);

}  // namespace nodenomad
