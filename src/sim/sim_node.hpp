// SimNode: one simulated machine. A RaftEngine over a FileLogStore, with a
// StorageEngine (replicated mode) as its state machine, both on the node's
// own FaultInjectingFileSystem, and a small runtime that follows the Ready
// contract of raft_engine.hpp exactly:
//
//   1. ready.messages leave at once;
//   2. snapshot, entries and hard state are written to the LogStore, and the
//      fsync is "in flight" for a simulated disk latency, during which the
//      node goes on ticking and receiving (the leader's parallel write);
//   3. when the disk is done: sync(), then messages_after_persist leave;
//   4. committed entries are applied (answering the clients whose proposals
//      they are), read states wait until applied, then advance().
//
// A crash throws away everything in memory and calls the disk's crash(),
// which loses what was not synced (and may tear it); start() reopens the log
// store, the storage engine and the engine from the disk. An I/O error
// (an injected fsync failure) makes the node fail-stop: failed() turns true
// and the simulator crashes it, as a real node stops after a failed fsync.
//
// Thread safety: none (the simulator's one thread). Bounded: proposals and
// reads waiting here are capped (kMaxPendingProposals, kMaxPendingReads);
// beyond them a client is answered kBusy.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/clock.hpp"
#include "nodenomad/file_log_store.hpp"
#include "nodenomad/raft/invariants.hpp"
#include "nodenomad/raft/raft_engine.hpp"
#include "nodenomad/storage/storage_engine.hpp"
#include "nodenomad/testing/fault_injecting_file_system.hpp"
#include "nodenomad/testing/simulator.hpp"
#include "sim/sim_types.hpp"
#include "sim/trace.hpp"

namespace nodenomad::sim {

// What a node needs from the simulator around it.
class NodeHost {
 public:
  virtual ~NodeHost() = default;
  virtual SimTime now() const = 0;
  virtual void send(std::uint32_t from, const Message& message) = 0;
  virtual void reply(std::uint32_t node, const ClientReply& reply) = 0;
  virtual void schedule_disk_done(std::uint32_t node, std::uint64_t incarnation, SimTime delay) = 0;
  virtual void on_soft_state(std::uint32_t node, const SoftState& soft, Term term) = 0;
  virtual void violation(const Status& status) = 0;
  virtual Invariants& invariants() = 0;
  virtual TraceLog& trace() = 0;
};

struct SimNodeConfig {
  RaftConfig raft;  // id is set by the node
  FileLogStoreOptions log_store;
  // A storage snapshot and a log compaction after this many applied entries,
  // keeping compact_keep_entries behind it for followers slightly behind.
  std::uint64_t compact_every_entries = 128;
  std::uint64_t compact_keep_entries = 16;
  std::uint32_t disk_min_latency_us = 100;
  std::uint32_t disk_max_latency_us = 1'000;
  double slow_disk_probability = 0;
  std::uint32_t slow_disk_latency_us = 50'000;
  testing::SimRuntimeBug bug = testing::SimRuntimeBug::kNone;
};

struct SimNodeCounters {
  std::uint64_t compactions = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t applied_entries = 0;
};

class SimNode {
 public:
  static constexpr std::size_t kMaxPendingProposals = 1024;
  static constexpr std::size_t kMaxPendingReads = 1024;

  SimNode(std::uint32_t index, NodeId id, SimNodeConfig config, Rng rng, Clock& clock,
          NodeHost& host);
  ~SimNode();
  SimNode(const SimNode&) = delete;
  SimNode& operator=(const SimNode&) = delete;

  // Writes the group's first configuration onto the empty disk.
  Status bootstrap(const ConfState& conf);
  // Opens log store, storage engine and RaftEngine from the disk.
  Status start();
  // Power loss: memory is gone, the disk keeps what was synced.
  void crash(bool tear_unsynced_tail);
  // Empties the disk of a crashed node (a replica dropped): start() then
  // opens an empty node with no configuration.
  Status wipe();
  // The next fsync of this node's disk fails (the node will fail-stop).
  void inject_sync_failure();

  // --- inputs (only while up) ---
  void tick();
  void deliver(const Message& message);
  void on_client_request(const ClientRequest& request);
  void on_disk_done(std::uint64_t incarnation);
  // Requests of the nemesis and the host, passed on to the engine (then
  // its Ready is taken, as after any input).
  Status transfer_leadership(const NodeId& to);
  Status campaign();
  Result<ProposeResult> propose_conf_change(const ConfChange& change);
  // The transport could not reach `peer` (its connection was refused).
  void report_unreachable(const NodeId& peer);

  // --- state ---
  std::uint32_t index() const { return index_; }
  const NodeId& id() const { return id_; }
  bool up() const { return engine_ != nullptr; }
  // An I/O error stopped the node; the simulator must crash() it.
  bool failed() const { return !failure_.is_ok(); }
  const Status& failure() const { return failure_; }
  std::uint64_t incarnation() const { return incarnation_; }
  bool write_in_flight() const { return in_flight_.has_value(); }
  RaftEngine* engine() { return engine_.get(); }
  const RaftEngine* engine() const { return engine_.get(); }
  StorageEngine* storage() { return storage_.get(); }
  const StorageEngine* storage() const { return storage_.get(); }
  const SimNodeCounters& counters() const { return counters_; }
  SimTime tick_period_us() const { return tick_period_us_; }
  void set_tick_period_us(SimTime period) { tick_period_us_ = period; }

 private:
  struct PendingProposal {
    ClientRequest request;
    Term term;
  };
  struct PendingRead {
    ClientRequest request;
    LogIndex index;  // known once the ReadState arrived
    SimTime since = 0;
  };
  // A read whose ReadState never came (its request to the leader was lost)
  // is forgotten after this long; its client gave up long before.
  static constexpr SimTime kReadGiveUpUs = 10'000'000;

  void pump();
  void persist(const Ready& rd);
  void complete_ready(Ready& rd);
  void apply_committed(const Ready& rd);
  void answer_proposal(const Entry& entry, const std::string& response);
  void accept_read_states(const Ready& rd);
  void serve_reads();
  void serve_read(const ClientRequest& request);
  void forget_abandoned_reads();
  void forget_skipped_proposals();
  void maybe_compact();
  void propose_write(const ClientRequest& request);
  void start_read(const ClientRequest& request);
  void answer(const ClientRequest& request, ReplyKind kind, testing::KvResult result = {});
  void fail(const Status& why);
  SimTime disk_latency();
  void trace(TraceRecord record, bool hash_only = false);

  std::uint32_t index_;
  NodeId id_;
  SimNodeConfig config_;
  Rng rng_;
  Clock& clock_;
  NodeHost& host_;
  testing::FaultInjectingFileSystem fs_;
  std::unique_ptr<FileLogStore> log_store_;
  std::unique_ptr<StorageEngine> storage_;
  std::unique_ptr<RaftEngine> engine_;
  std::optional<Ready> in_flight_;
  std::map<LogIndex, PendingProposal> proposals_;
  std::map<std::string, PendingRead> reads_;  // by read context
  LogIndex last_compaction_;
  std::uint64_t incarnation_ = 0;
  SimTime tick_period_us_ = 10'000;
  Status failure_;
  SimNodeCounters counters_;
};

}  // namespace nodenomad::sim
