// What the Raft benchmarks share: flag parsing, JSON-line output, a
// stopwatch, a scratch directory, and BenchCluster, an in-process cluster of
// RaftEngines wired through one message queue and driven by one thread.
//
// Flags are --name value or --name=value; --quick selects the small sizes of
// the CI smoke run. Every figure is printed as one JSON object per line, so a
// script can collect them (`| jq`).
//
// BenchCluster is not a test harness: it checks no invariants and keeps no
// history, so that the engine's own cost dominates what is measured. It
// follows the Ready contract of raft_engine.hpp to the letter (messages,
// then persist and sync, then the messages held for persistence, then
// advance), so the figures are those of a correct host.
#pragma once

#include <stdlib.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include "nodenomad/file_log_store.hpp"
#include "nodenomad/file_system.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/raft/raft_engine.hpp"

namespace nodenomad::raft_bench {

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
  // with defaults.
  Flags(int argc, char** argv, std::vector<std::string> accepted) : accepted_(std::move(accepted)) {
    accepted_.push_back("quick");
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
      } else if (name == "quick") {
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

// --- an in-process cluster ----------------------------------------------------

enum class StoreKind { kMemory, kFile };

inline StoreKind parse_store_kind(const std::string& text) {
  if (text == "memory") return StoreKind::kMemory;
  if (text == "file") return StoreKind::kFile;
  Flags::usage_error(fmt::format("--log-store takes memory or file, got '{}'", text));
}

inline std::string_view store_kind_name(StoreKind kind) {
  return kind == StoreKind::kMemory ? "memory" : "file";
}

inline NodeId bench_node(int i) { return NodeId(fmt::format("n{}", i)); }

struct ClusterOptions {
  int node_count = 3;
  RaftConfig base;  // id is filled in per node
  StoreKind store = StoreKind::kMemory;
  std::string dir;  // kFile: each node's store goes in a subdirectory
  FileLogStoreOptions file_options;
  std::uint64_t seed = 1;
  // When set, wraps each node's store (e.g. to attribute its memory); the
  // wrapper must forward every call.
  std::function<std::unique_ptr<LogStore>(std::unique_ptr<LogStore>)> wrap_store;
  // When set, called with a node's position (0 for n1, ...) before the
  // driver calls into that node, and with -1 once it is done, so that a
  // benchmark can attribute what each node allocates.
  std::function<void(int)> on_enter_node;
};

struct BenchNode {
  NodeId id;
  int position = 0;  // 0 for n1, 1 for n2, ...
  FileLogStore* file_store = nullptr;  // kFile: the store under any wrapper
  std::unique_ptr<LogStore> store;
  std::unique_ptr<RaftEngine> engine;
  std::uint64_t applied_commands = 0;  // committed entries with data handed out
  LogIndex applied;
  std::uint64_t readies = 0;
  std::uint64_t syncs = 0;
};

class BenchCluster {
 public:
  explicit BenchCluster(ClusterOptions options) : options_(std::move(options)) {
    ConfState conf;
    for (int i = 1; i <= options_.node_count; ++i) conf.voters.push_back(bench_node(i));
    std::sort(conf.voters.begin(), conf.voters.end());
    for (int i = 1; i <= options_.node_count; ++i) open_node(bench_node(i), i - 1, conf);
  }

  BenchNode& node(const NodeId& id) {
    auto it = nodes_.find(id);
    if (it == nodes_.end()) fail(fmt::format("no node {}", id.str()));
    return it->second;
  }
  RaftEngine& engine(const NodeId& id) { return *node(id).engine; }
  std::map<NodeId, BenchNode>& nodes() { return nodes_; }
  std::vector<Message>& queue() { return queue_; }

  // Messages from or to an isolated node are dropped when delivered.
  void isolate(const NodeId& id) { isolated_.insert(id); }
  void reconnect(const NodeId& id) { isolated_.erase(id); }

  // One Ready cycle of `n` under the Ready contract; false if it had none.
  bool process_ready(BenchNode& n) {
    if (!n.engine->has_ready()) return false;
    const NodeScope scope(*this, n.position);
    Ready rd = n.engine->ready();
    ++n.readies;
    for (Message& m : rd.messages) queue_.push_back(std::move(m));
    persist(n, rd);
    for (Message& m : rd.messages_after_persist) queue_.push_back(std::move(m));
    for (const Entry& e : rd.committed_entries) {
      if (e.type == EntryType::kNormal && !e.data.empty()) ++n.applied_commands;
    }
    if (!rd.committed_entries.empty()) n.applied = rd.committed_entries.back().index;
    n.engine->advance(rd);
    return true;
  }

  bool process_all_ready() {
    bool any = false;
    for (auto& [id, n] : nodes_) any = process_ready(n) || any;
    return any;
  }

  // Delivers every message queued so far (those sent meanwhile wait for the
  // next call); returns how many reached their node.
  std::size_t deliver_all() {
    std::vector<Message> batch;
    batch.swap(queue_);
    std::size_t delivered = 0;
    for (const Message& m : batch) {
      if (isolated_.contains(m.from) || isolated_.contains(m.to)) continue;
      BenchNode& to = node(m.to);
      const NodeScope scope(*this, to.position);
      check(to.engine->step(m), "step");
      ++delivered;
    }
    return delivered;
  }

  // Ready cycles and deliveries until nothing moves; fails after max_rounds.
  void settle(int max_rounds = 10000) {
    for (int round = 0; round < max_rounds; ++round) {
      const bool readied = process_all_ready();
      if (deliver_all() == 0 && !readied && queue_.empty()) return;
    }
    fail("the cluster did not settle");
  }

  // Elects `id` (pre-vote first) and waits for its no-op to commit everywhere.
  void elect(const NodeId& id) {
    check(engine(id).campaign(), "campaign");
    settle();
    if (engine(id).role() != RaftRole::kLeader) fail(fmt::format("{} was not elected", id.str()));
  }

  std::uint64_t fsyncs() const {
    std::uint64_t total = 0;
    for (const auto& [id, n] : nodes_) {
      total += n.file_store != nullptr ? n.file_store->stats().fsyncs : 0;
    }
    return total;
  }

 private:
  class NodeScope {
   public:
    NodeScope(const BenchCluster& cluster, int position) : cluster_(cluster) {
      if (cluster_.options_.on_enter_node) cluster_.options_.on_enter_node(position);
    }
    ~NodeScope() {
      if (cluster_.options_.on_enter_node) cluster_.options_.on_enter_node(-1);
    }
    NodeScope(const NodeScope&) = delete;
    NodeScope& operator=(const NodeScope&) = delete;

   private:
    const BenchCluster& cluster_;
  };

  void open_node(const NodeId& id, int position, const ConfState& conf) {
    BenchNode n;
    n.id = id;
    n.position = position;
    if (options_.store == StoreKind::kMemory) {
      n.store = std::make_unique<MemoryLogStore>();
    } else {
      Result<std::unique_ptr<FileLogStore>> opened = FileLogStore::open(
          PosixFileSystem::instance(), join_path(options_.dir, id.str()), options_.file_options);
      check(opened.status(), "FileLogStore::open");
      n.file_store = opened->get();
      n.store = std::move(opened).value();
    }
    if (options_.wrap_store) n.store = options_.wrap_store(std::move(n.store));
    check(RaftEngine::bootstrap(*n.store, conf), "bootstrap");
    RaftConfig config = options_.base;
    config.id = id;
    const Rng rng(options_.seed * 1000003 + static_cast<std::uint64_t>(position));
    Result<std::unique_ptr<RaftEngine>> engine = RaftEngine::open(config, *n.store, nullptr, rng);
    check(engine.status(), "RaftEngine::open");
    n.engine = std::move(engine).value();
    nodes_.emplace(id, std::move(n));
  }

  void persist(BenchNode& n, const Ready& rd) {
    if (rd.snapshot) check(n.store->install_snapshot(*rd.snapshot), "install_snapshot");
    if (!rd.entries.empty()) check(n.store->append(rd.entries), "append");
    if (rd.hard_state) check(n.store->set_hard_state(*rd.hard_state), "set_hard_state");
    if (rd.must_sync()) {
      // A failed sync stops the node for good (STYLE.md point 4); here it
      // stops the benchmark.
      check(n.store->sync().status(), "sync");
      ++n.syncs;
    }
  }

  ClusterOptions options_;
  std::map<NodeId, BenchNode> nodes_;
  std::vector<Message> queue_;
  std::set<NodeId> isolated_;
};

}  // namespace nodenomad::raft_bench
