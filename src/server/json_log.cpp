#include "nodenomad/server/json_log.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>

#include "server/json_text.hpp"

namespace nodenomad {
namespace {

// "2024-05-01T12:34:56.789Z"
std::string iso8601_utc_ms(std::chrono::system_clock::time_point ts) {
  using std::chrono::duration_cast;
  using std::chrono::milliseconds;
  const auto since_epoch_ms = duration_cast<milliseconds>(ts.time_since_epoch()).count();
  // Floor division, so an instant before 1970 keeps a positive millisecond.
  std::int64_t seconds = since_epoch_ms / 1000;
  std::int64_t ms = since_epoch_ms % 1000;
  if (ms < 0) {
    ms += 1000;
    seconds -= 1;
  }
  const auto time = static_cast<std::time_t>(seconds);
  std::tm utc{};
  ::gmtime_r(&time, &utc);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", utc.tm_year + 1900,
                     utc.tm_mon + 1, utc.tm_mday, utc.tm_hour, utc.tm_min, utc.tm_sec, ms);
}

struct SinkState {
  std::string node_id;
  int fd;
  // Serializes whole lines: a write() the kernel accepts only in part (a
  // full pipe, a signal) is finished before another thread's line starts.
  // Only log lines wait on it, and each holds it for one bounded write.
  std::mutex write_mu;
};

void write_line(SinkState& state, std::string_view line) {
  std::lock_guard lock(state.write_mu);
  while (!line.empty()) {
    const ssize_t written = ::write(state.fd, line.data(), line.size());
    if (written < 0 && errno == EINTR) continue;
    if (written <= 0) return;  // a closed or broken stderr: drop the line
    line.remove_prefix(static_cast<std::size_t>(written));
  }
}

}  // namespace

std::string format_json_log_line(std::chrono::system_clock::time_point ts, LogLevel level,
                                 std::string_view node_id, std::string_view component,
                                 std::string_view message) {
  const std::string_view shown = server::utf8_prefix(message, kMaxLogMessageBytes);
  std::string line;
  line.reserve(96 + node_id.size() + component.size() + shown.size());
  line += "{\"ts\":\"";
  line += iso8601_utc_ms(ts);
  line += "\",\"level\":\"";
  line += log_level_name(level);
  line += "\",\"node\":";
  server::append_json_string(line, node_id);
  line += ",\"component\":";
  server::append_json_string(line, component);
  line += ",\"msg\":";
  server::append_json_string(line, shown);
  if (shown.size() < message.size()) {
    line += fmt::format(",\"truncated_bytes\":{}", message.size() - shown.size());
  }
  line += "}\n";
  return line;
}

LogSink make_json_log_sink(std::string node_id, int fd) {
  auto state = std::make_shared<SinkState>();
  state->node_id = std::move(node_id);
  state->fd = fd;
  return [state](LogLevel level, std::string_view component, std::string_view message) {
    const std::string line = format_json_log_line(std::chrono::system_clock::now(), level,
                                                  state->node_id, component, message);
    write_line(*state, line);
  };
}

}  // namespace nodenomad
