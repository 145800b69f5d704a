#include "nodenomad/logging.hpp"

#include <atomic>
#include <cstdio>
#include <memory>
#include <mutex>

namespace nodenomad {
namespace {

std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
std::mutex g_sink_mu;
// Held as shared_ptr so a log() in flight keeps the sink it started with
// alive while another thread replaces it.
std::shared_ptr<const LogSink> g_sink;

void stderr_sink(LogLevel level, std::string_view component, std::string_view message) {
  std::fprintf(stderr, "[%.*s] %.*s: %.*s\n", static_cast<int>(log_level_name(level).size()),
               log_level_name(level).data(), static_cast<int>(component.size()),
               component.data(), static_cast<int>(message.size()), message.data());
}

}  // namespace

std::string_view log_level_name(LogLevel level) {
  switch (level) {
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "unknown";
}

void set_log_sink(LogSink sink) {
  std::shared_ptr<const LogSink> next;
  if (sink) next = std::make_shared<const LogSink>(std::move(sink));
  std::lock_guard lock(g_sink_mu);
  g_sink = std::move(next);
}

void set_log_level(LogLevel level) { g_level.store(static_cast<int>(level)); }

bool log_enabled(LogLevel level) { return static_cast<int>(level) >= g_level.load(); }

void log(LogLevel level, std::string_view component, std::string_view message) {
  if (!log_enabled(level)) return;
  std::shared_ptr<const LogSink> sink;
  {
    std::lock_guard lock(g_sink_mu);
    sink = g_sink;
  }
  if (sink) {
    (*sink)(level, component, message);
  } else {
    stderr_sink(level, component, message);
  }
}

}  // namespace nodenomad
