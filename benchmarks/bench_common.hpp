// What every benchmark shares: flag parsing that refuses unknown flags,
// JSON-line output, a wall + CPU stopwatch, the machine's load average, a
// scratch directory removed even when a run fails, and percentiles.
//
// Flags are --name value or --name=value; --quick selects the small sizes of
// the CI smoke run. Every figure is printed as one JSON object per line, so a
// script can collect them (`| jq`).
#pragma once

#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "nodenomad/file_system.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad::bench {

// Scratch directories alive now; fail() removes them, since exit() skips
// the destructors that would.
inline std::vector<std::string>& live_scratch_dirs() {
  static std::vector<std::string> dirs;
  return dirs;
}

[[noreturn]] inline void fail(std::string_view what) {
  std::fprintf(stderr, "benchmark failed: %.*s\n", static_cast<int>(what.size()), what.data());
  for (const std::string& dir : live_scratch_dirs()) {
    (void)PosixFileSystem::instance().remove_all(dir);
  }
  std::exit(1);
}

inline void check(const Status& status, std::string_view what) {
  if (!status.is_ok()) fail(fmt::format("{}: {}", what, status.to_string()));
}

// Elections are routine in a benchmark; only warnings and errors are worth
// a line on stderr.
inline void quiet_routine_logs() { set_log_level(LogLevel::kWarn); }

// --- flags --------------------------------------------------------------------

class Flags {
 public:
  // `accepted` lists the flag names (without "--") the benchmark knows;
  // anything else stops it with the list, so a typo never runs silently
  // with defaults. `switches` take no value (--quick is always one).
  Flags(int argc, char** argv, std::vector<std::string> accepted,
        std::vector<std::string> switches = {})
      : accepted_(std::move(accepted)), switches_(std::move(switches)) {
    switches_.push_back("quick");
    accepted_.insert(accepted_.end(), switches_.begin(), switches_.end());
    for (int i = 1; i < argc; ++i) {
      std::string_view arg(argv[i]);
      if (!arg.starts_with("--")) usage_error(fmt::format("unexpected argument '{}'", arg));
      arg.remove_prefix(2);
      std::string name(arg.substr(0, arg.find('=')));
      if (std::find(accepted_.begin(), accepted_.end(), name) == accepted_.end()) {
        usage_error(fmt::format("unknown flag --{}; accepted: --{}", name,
                                fmt::join(accepted_, " --")));
      }
      if (name.size() < arg.size()) {
        values_[name] = std::string(arg.substr(name.size() + 1));
      } else if (std::find(switches_.begin(), switches_.end(), name) != switches_.end()) {
        values_[name] = "1";
      } else if (i + 1 < argc) {
        values_[name] = argv[++i];
      } else {
        usage_error(fmt::format("--{} needs a value", name));
      }
    }
  }

  bool quick() const { return values_.count("quick") > 0; }
  bool has(const std::string& name) const { return values_.count(name) > 0; }

  std::string text(const std::string& name, std::string fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // An unsigned integer: `full` by default, `quick_value` under --quick.
  std::uint64_t number(const std::string& name, std::uint64_t full,
                       std::uint64_t quick_value) const {
    auto it = values_.find(name);
    if (it == values_.end()) return quick() ? quick_value : full;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0' || it->second[0] == '-') {
      usage_error(fmt::format("--{} takes a non-negative integer, got '{}'", name, it->second));
    }
    return v;
  }
  double real(const std::string& name, double full, double quick_value) const {
    auto it = values_.find(name);
    if (it == values_.end()) return quick() ? quick_value : full;
    char* end = nullptr;
    const double v = std::strtod(it->second.c_str(), &end);
    if (end == it->second.c_str() || *end != '\0' || !std::isfinite(v) || v < 0) {
      usage_error(fmt::format("--{} takes a non-negative number, got '{}'", name, it->second));
    }
    return v;
  }

  [[noreturn]] static void usage_error(const std::string& message) {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(2);
  }

 private:
  std::vector<std::string> accepted_;
  std::vector<std::string> switches_;
  std::map<std::string, std::string> values_;
};

// --- output -------------------------------------------------------------------

// One JSON object on one line; fields keep the order they were added in.
class JsonLine {
 public:
  explicit JsonLine(std::string_view bench) { add("bench", bench); }

  JsonLine& add(std::string_view key, std::string_view value) {
    std::string quoted;
    for (char c : value) {
      if (c == '"' || c == '\\') quoted.push_back('\\');
      quoted.push_back(c);
    }
    return raw(key, fmt::format("\"{}\"", quoted));
  }
  JsonLine& add(std::string_view key, const char* value) {
    return add(key, std::string_view(value));
  }
  JsonLine& add(std::string_view key, const std::string& value) {
    return add(key, std::string_view(value));
  }
  JsonLine& add(std::string_view key, bool value) { return raw(key, value ? "true" : "false"); }
  JsonLine& add(std::string_view key, std::uint64_t value) {
    return raw(key, fmt::format("{}", value));
  }
  JsonLine& add(std::string_view key, std::uint32_t value) {
    return raw(key, fmt::format("{}", value));
  }
  JsonLine& add(std::string_view key, int value) { return raw(key, fmt::format("{}", value)); }
  // Reals keep 4 significant digits past the integer part; that is all a
  // benchmark figure ever means.
  JsonLine& add(std::string_view key, double value) {
    if (!std::isfinite(value)) return raw(key, "null");
    if (std::fabs(value) >= 1000) return raw(key, fmt::format("{:.0f}", value));
    return raw(key, fmt::format("{:.4g}", value));
  }

  void print() const {
    std::fputs(fmt::format("{{{}}}\n", body_).c_str(), stdout);
    std::fflush(stdout);
  }

 private:
  JsonLine& raw(std::string_view key, std::string_view json) {
    if (!body_.empty()) body_ += ",";
    body_ += fmt::format("\"{}\":{}", key, json);
    return *this;
  }
  std::string body_;
};

// Wall time and this thread's CPU time: on a machine shared with other work
// the two differ, and the CPU time is the benchmark's own cost.
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()), cpu_start_(thread_cpu_seconds()) {}
  double seconds() const {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  }
  double cpu_seconds() const { return thread_cpu_seconds() - cpu_start_; }

 private:
  static double thread_cpu_seconds() {
    timespec ts{};
    ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
  }
  std::chrono::steady_clock::time_point start_;
  double cpu_start_;
};

// The machine's 1-minute load average, printed next to the figures so a
// reader knows how busy the machine was when they were measured.
inline double load_average_1min() {
  double loads[1] = {0};
  return ::getloadavg(loads, 1) == 1 ? loads[0] : -1.0;
}

// A fresh directory created under `parent`, removed (with everything in it)
// when this goes away.
class ScratchDir {
 public:
  ScratchDir(const std::string& parent, std::string_view prefix) {
    std::string pattern = join_path(parent, fmt::format("{}-XXXXXX", prefix));
    if (::mkdtemp(pattern.data()) == nullptr) {
      fail(fmt::format("cannot create a directory from {}", pattern));
    }
    path_ = pattern;
    live_scratch_dirs().push_back(path_);
  }
  ~ScratchDir() {
    (void)PosixFileSystem::instance().remove_all(path_);
    std::erase(live_scratch_dirs(), path_);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// --- distributions ------------------------------------------------------------

struct Summary {
  double min = 0;
  double median = 0;
  double p99 = 0;
  double max = 0;
  double mean = 0;
};

// Nearest-rank percentiles of `values` (sorted in place); all zero if empty.
inline Summary summarize(std::vector<double>& values) {
  Summary s;
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  const auto rank = [&](double q) {
    const auto r = static_cast<std::size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<std::size_t>(r, 1, values.size()) - 1];
  };
  s.min = values.front();
  s.median = rank(0.5);
  s.p99 = rank(0.99);
  s.max = values.back();
  double sum = 0;
  for (double v : values) sum += v;
  s.mean = sum / static_cast<double>(values.size());
  return s;
}

}  // namespace nodenomad::bench
