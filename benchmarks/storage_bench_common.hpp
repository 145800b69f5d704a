// Shared plumbing of the storage benchmarks: flags, a scratch directory that
// is removed at exit, a stopwatch, key/value generation and JSON lines.
//
// Flags: --name=value or --name value; --quick selects small sizes that
// finish in a few seconds (CI smoke runs); --dir=PATH puts the scratch
// directory under PATH (default: a fresh directory under /tmp).
#pragma once

#include <time.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <fmt/format.h>

#include "nodenomad/file_system.hpp"
#include "nodenomad/rng.hpp"

namespace nodenomad::bench {

class Flags {
 public:
  Flags(int argc, char** argv) {
    for (int i = 1; i < argc; ++i) {
      std::string_view arg(argv[i]);
      if (!arg.starts_with("--")) usage_error(fmt::format("unexpected argument {}", arg));
      arg.remove_prefix(2);
      const std::size_t eq = arg.find('=');
      if (eq != std::string_view::npos) {
        values_[std::string(arg.substr(0, eq))] = std::string(arg.substr(eq + 1));
      } else if (arg == "quick") {
        values_["quick"] = "1";
      } else if (i + 1 < argc) {
        values_[std::string(arg)] = argv[++i];
      } else {
        usage_error(fmt::format("--{} needs a value", arg));
      }
    }
  }

  bool quick() const { return values_.count("quick") > 0; }
  std::string text(const std::string& name, std::string fallback) const {
    auto it = values_.find(name);
    return it == values_.end() ? fallback : it->second;
  }
  // An integer flag; `full` by default, `quick_value` with --quick.
  std::uint64_t number(const std::string& name, std::uint64_t full,
                       std::uint64_t quick_value) const {
    auto it = values_.find(name);
    if (it == values_.end()) return quick() ? quick_value : full;
    char* end = nullptr;
    const unsigned long long v = std::strtoull(it->second.c_str(), &end, 10);
    if (end == it->second.c_str() || *end != '\0') {
      usage_error(fmt::format("--{} takes a non-negative integer, got {}", name, it->second));
    }
    return v;
  }

 private:
  [[noreturn]] static void usage_error(const std::string& message) {
    std::fprintf(stderr, "%s\n", message.c_str());
    std::exit(2);
  }
  std::map<std::string, std::string> values_;
};

// A fresh directory under --dir (or /tmp), removed when this goes away.
class ScratchDir {
 public:
  explicit ScratchDir(const Flags& flags) {
    std::string pattern = join_path(flags.text("dir", "/tmp"), "nodenomad-storage-bench-XXXXXX");
    if (::mkdtemp(pattern.data()) == nullptr) {
      std::fprintf(stderr, "cannot create a directory from %s\n", pattern.c_str());
      std::exit(1);
    }
    path_ = pattern;
  }
  ~ScratchDir() { (void)PosixFileSystem::instance().remove_all(path_); }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Wall time, and the calling thread's CPU time: on a machine shared with
// other work the two differ, and the CPU time is the engine's own cost.
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

// Key i as exactly `bytes` bytes ("k000...0042"), so keys sort like numbers.
inline std::string make_key(std::uint64_t i, std::size_t bytes) {
  std::string key = fmt::format("k{:0{}}", i, bytes - 1);
  key.resize(bytes);
  return key;
}

inline std::string make_value(Rng& rng, std::size_t bytes) {
  std::string value(bytes, '\0');
  for (char& c : value) c = static_cast<char>('a' + rng.uniform(26));
  return value;
}

// 0 .. n-1 in a seeded random order.
inline std::vector<std::uint32_t> shuffled(std::uint64_t n, Rng& rng) {
  std::vector<std::uint32_t> order(n);
  for (std::uint64_t i = 0; i < n; ++i) order[i] = static_cast<std::uint32_t>(i);
  for (std::uint64_t i = n; i > 1; --i) std::swap(order[i - 1], order[rng.uniform(i)]);
  return order;
}

inline void require(bool condition, std::string_view what) {
  if (!condition) {
    std::fprintf(stderr, "benchmark failed: %.*s\n", static_cast<int>(what.size()), what.data());
    std::exit(1);
  }
}

}  // namespace nodenomad::bench
