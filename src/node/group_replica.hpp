// GroupReplica: one Raft group as hosted by a node — its RaftEngine, its
// LogStore and its state machine — and the Ready cycle of raft_engine.hpp:
//
//   1. ready.messages leave at once (the leader's parallel write);
//   2. snapshot, entries and hard state go to the LogStore on the loop
//      thread (page cache), and the fsync is handed to the node's disk
//      thread, which syncs every group that asked in one batch (group
//      commit across groups); meanwhile the replica goes on ticking and
//      stepping;
//   3. once synced: messages_after_persist leave, committed entries are
//      applied (answering the proposals made here), read states are served
//      once applied, then advance().
//
// A failed write or fsync fail-stops the replica (and the node stops): a
// failed fsync is never retried.
//
// Thread safety: none; everything runs on the node's event loop, except
// log_store().sync(), which the disk thread calls while a sync is asked.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/raft/raft_engine.hpp"
#include "nodenomad/state_machine.hpp"

namespace nodenomad::node {

class GroupReplica;

// The RaftConfig a node runs its replica of `group` with: options.raft, the
// node's id, and the rules of each kind of group (Node::Impl uses it).
RaftConfig replica_raft_config(const NodeOptions& options, GroupId group);

// What a replica needs from the node around it.
class ReplicaHost {
 public:
  virtual ~ReplicaHost() = default;
  virtual void send_raft(GroupId group, Message message) = 0;
  // Sync replica.log_store() on the disk thread, then call on_synced().
  virtual void request_sync(GroupReplica& replica) = 0;
  virtual void on_replica_failed(GroupId group, const Status& why) = 0;
  virtual void on_soft_state(GroupId group, const SoftState& soft) = 0;
  // Entries were applied (the metadata group's routing may have changed).
  virtual void on_applied(GroupId group) = 0;
  // Runs `work` off the event loop (a whole-state snapshot file), then
  // `done` with its status back on the loop. `done` is not called once the
  // node stops. The default runs both at once, here.
  virtual void run_off_loop(std::function<Status()> work, std::function<void(Status)> done) {
    done(work());
  }
  // Runs `fn` on the loop later, after what is queued there now (a long
  // task cut into turns). The default runs it at once.
  virtual void post_to_loop(std::function<void()> fn) { fn(); }
};

struct ReplicaParts {
  std::unique_ptr<LogStore> log_store;
  // The state machine and who owns it (a StorageEngine, the metadata one).
  std::shared_ptr<StateMachine> state_machine;
  // Makes the state machine's state through last_applied_index() durable on
  // its own, so the log before it may be compacted; empty: never compact.
  std::function<Status()> persist_state;
  // persist_state may run on another thread, concurrently with applies
  // (ReplicaHost::run_off_loop): true for a StorageEngine, whose snapshot()
  // captures its state under its own lock and writes the file from the
  // capture. The log is compacted once the file is written.
  bool persist_state_off_loop = false;
  // The state's size in bytes, for ReplicaLimits' size rule; empty: the
  // rule is off (compact every compact_every_entries).
  std::function<std::uint64_t()> state_bytes;
  // For a state machine whose restore does not make itself durable (the
  // metadata one; a StorageEngine's restore writes its own snapshot file):
  // makes a state just restored from the leader's snapshot durable. Called
  // before the LogStore records that snapshot, so that after a crash the log
  // never starts after a state that was not kept. Empty: nothing to do.
  std::function<Status()> persist_restored_state;
  // Wraps each snapshot source Raft opens to stream the state to a peer
  // (the node reads a shard's chunks ahead off the loop:
  // PrefetchingSnapshotSource, which calls snapshot_chunks_ready()). Empty:
  // Raft reads the state machine's source as it is.
  std::function<std::unique_ptr<SnapshotSource>(std::unique_ptr<SnapshotSource>)>
      wrap_snapshot_source;
};

struct ReplicaLimits {
  std::size_t max_pending_proposals = 4096;
  std::size_t max_pending_reads = 4096;
  // Compact after this many applied entries, keeping `keep` behind.
  std::uint64_t compact_every_entries = 10'000;
  std::uint64_t compact_keep_entries = 1'000;
  // And (with ReplicaParts::state_bytes) only once the entries applied since
  // the last compaction hold this fraction of the state's bytes, unless the
  // state is smaller than small_state_bytes (NodeOptions explains).
  double compact_log_fraction = 0;
  std::uint64_t compact_small_state_bytes = 0;
  // A proposal or read with no answer after this many ticks is given up
  // (its caller has long timed out; this only bounds memory).
  std::uint64_t give_up_ticks = 600;
};

// Answers of a proposal: the state machine's response bytes; kUnavailable
// when it was refused or lost (never applied); kTimeout when given up.
using ProposalDone = std::function<void(Result<std::string>)>;
// Answers of a read: OK once the state machine may serve it; kUnavailable
// when no leader could confirm it.
using ReadDone = std::function<void(Status)>;

class GroupReplica {
 public:
  static Result<std::unique_ptr<GroupReplica>> open(GroupId group, const RaftConfig& config,
                                                    ReplicaParts parts, ReplicaLimits limits,
                                                    Rng rng, ReplicaHost& host);
  ~GroupReplica();
  GroupReplica(const GroupReplica&) = delete;
  GroupReplica& operator=(const GroupReplica&) = delete;

  void tick();
  void step(const Message& message);
  void propose(std::string command, ProposalDone done);
  // The same, answering at once the index the entry takes in the leader's
  // log (kUnavailable when it was not logged; `done` is then not called).
  Result<LogIndex> propose_indexed(std::string command, ProposalDone done);
  // Calls `fn(true)` right after the entry at `index` is applied, before the
  // next one is (so the state machine is then exactly at `index`), or at
  // once with true when it is exactly there now; `fn(false)` when the
  // replica is already past `index` or a snapshot skips it.
  void when_applied(LogIndex index, std::function<void(bool exact)> fn);
  // Applies committed entries up to `index` and keeps the later ones, in
  // order, until release_apply_hold() (a learner held still while its state
  // is verified). The entries are durable meanwhile; only applying waits.
  void hold_apply_after(LogIndex index);
  // Applies what the hold kept, at most kHeldApplyBytesPerTurn of entries
  // per turn of the loop (ReplicaHost::post_to_loop); entries committed
  // meanwhile wait behind them. A learner held for a second or two keeps
  // tens of thousands of entries: applied in one go, they stalled its loop
  // 50-90 ms in migration_bench, just as Update needs its answers.
  void release_apply_hold();
  static constexpr std::uint64_t kHeldApplyBytesPerTurn = 1u << 20;
  bool apply_held() const { return apply_hold_.has_value(); }
  // A Ready is waiting for the disk thread (the log store is in use).
  bool sync_in_flight() const { return in_flight_.has_value(); }
  // A snapshot file of the state machine is being written off the loop.
  bool compaction_in_flight() const { return compaction_in_flight_; }
  // allow_lease: the leader may answer from its lease (when configured).
  void read(bool allow_lease, ReadDone done);
  void on_synced(Result<LogIndex> durable);
  Result<ProposeResult> propose_conf_change(const ConfChange& change);
  Status transfer_leadership(const NodeId& to);
  void report_unreachable(const NodeId& peer);
  // A wrapped snapshot source (ReplicaParts::wrap_snapshot_source) has
  // chunks ready again.
  void snapshot_chunks_ready();
  Status campaign();

  GroupId group() const { return group_; }
  bool failed() const { return !failure_.is_ok(); }
  LogStore& log_store() { return *parts_.log_store; }
  const RaftEngine& engine() const { return *engine_; }
  StateMachine& state_machine() { return *parts_.state_machine; }
  bool is_leader() const { return engine_->role() == RaftRole::kLeader; }
  std::uint64_t syncs() const { return syncs_; }

 private:
  struct PendingProposal {
    Term term;
    std::uint64_t since_tick = 0;
    ProposalDone done;
  };
  struct PendingRead {
    LogIndex index;  // 0 until the ReadState arrived
    std::uint64_t since_tick = 0;
    ReadDone done;
  };

  GroupReplica(GroupId group, ReplicaParts parts, ReplicaLimits limits, ReplicaHost& host);
  void pump();
  void persist(const Ready& rd);
  void complete(Ready& rd);
  void apply_committed(const Ready& rd);
  // Applies one committed entry (answering its proposal) and fires the
  // watchers of its index; false once the replica failed.
  bool apply_entry(const Entry& e);
  void fire_watchers_through(LogIndex index, bool exact);
  // One turn of applying what a released hold kept (release_apply_hold).
  void drain_held();
  void serve_reads();
  void give_up_stale();
  void forget_skipped_proposals();
  void maybe_compact();
  // Tells the log store which entries it may drop from memory caches
  // (LogStore::release_cache): those applied here and held by every peer.
  void release_log_cache();
  // The state machine is durable through `applied`: drop the log before it.
  void compact_log(LogIndex applied);
  void fail(const Status& why);

  GroupId group_;
  ReplicaParts parts_;
  // What Raft calls: an adapter of the state machine that wraps its
  // snapshot sources and watches its restores.
  std::unique_ptr<StateMachine> raft_view_;
  // A disk error of a restore, seen by the adapter during a step; the next
  // pump() stops the replica with it.
  Status restore_failure_;
  ReplicaLimits limits_;
  ReplicaHost& host_;
  std::unique_ptr<RaftEngine> engine_;
  std::optional<Ready> in_flight_;
  std::map<LogIndex, PendingProposal> proposals_;
  std::map<std::uint64_t, PendingRead> reads_;  // by read id (the context)
  std::uint64_t next_read_id_ = 1;
  std::uint64_t ticks_ = 0;
  LogIndex last_compaction_;
  LogIndex cache_released_;  // the last release_cache() bound
  std::uint64_t syncs_ = 0;
  Status failure_;
  std::multimap<LogIndex, std::function<void(bool)>> watchers_;
  std::optional<LogIndex> apply_hold_;
  // The last committed entry applied, of any type. The state machine's own
  // last_applied_index() skips configuration changes, so a read whose index
  // is one of them must not wait for it.
  LogIndex applied_;
  // Committed after the hold, in order; after a release, what is still to
  // be applied (drain_held), with the entries committed since behind it.
  std::deque<Entry> held_;
  bool draining_ = false;  // a drain_held turn is posted
  bool compaction_in_flight_ = false;
  std::uint64_t bytes_since_compaction_ = 0;  // of entries applied since
  // Expires with the replica: an off-loop compaction finishing after the
  // replica was dropped finds nothing to compact.
  std::shared_ptr<const bool> alive_ = std::make_shared<const bool>(true);
};

}  // namespace nodenomad::node
