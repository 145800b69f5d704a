// Logging: where NodeNomad's few messages go (a torn WAL tail truncated, a
// peer refused, a node stopping after a failed fsync).
//
// The library never prints on its own initiative beyond these events. By
// default they go to stderr as one line each; a host installs its own sink
// to route them into its logging (the server installs a JSON-lines sink).
//
// Thread safety: log() and set_log_sink() may be called from any thread; the
// sink is called with no NodeNomad lock held but may be called concurrently,
// so a sink must be thread-safe itself.
#pragma once

#include <functional>
#include <string_view>

namespace nodenomad {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

std::string_view log_level_name(LogLevel level);

// component: a short name ("wal", "file_log_store"); message: one sentence.
using LogSink = std::function<void(LogLevel level, std::string_view component,
                                   std::string_view message)>;

// Replaces the sink (an empty function restores the stderr default).
void set_log_sink(LogSink sink);
// Messages below `level` are dropped before formatting reaches the sink.
void set_log_level(LogLevel level);
bool log_enabled(LogLevel level);

void log(LogLevel level, std::string_view component, std::string_view message);

}  // namespace nodenomad
