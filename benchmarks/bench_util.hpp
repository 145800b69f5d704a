// What the Raft benchmarks share beyond bench_common.hpp: BenchCluster, an
// in-process cluster of RaftEngines wired through one message queue and
// driven by one thread.
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

#include "bench_common.hpp"

#include "nodenomad/file_log_store.hpp"
#include "nodenomad/file_system.hpp"
#include "nodenomad/logging.hpp"
#include "nodenomad/memory_log_store.hpp"
#include "nodenomad/raft/raft_engine.hpp"

namespace nodenomad::raft_bench {

// The shared plumbing lives in bench_common.hpp.
using bench::check;
using bench::fail;
using bench::Flags;
using bench::JsonLine;
using bench::live_scratch_dirs;
using bench::load_average_1min;
using bench::quiet_routine_logs;
using bench::ScratchDir;
using bench::Stopwatch;
using bench::summarize;
using bench::Summary;

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
