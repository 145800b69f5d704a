// RaftEngine: one Raft group's consensus core, deterministic and embeddable.
//
// Thread safety: none. The engine is a pure state machine over its inputs;
// the node runtime runs each engine on one strand and never calls it from
// two threads at once.
//
// Inputs: time arrives as tick(), peers' messages as step(), the host's
// requests as propose() / read_index() / campaign() / transfer_leadership() /
// propose_conf_change() / compact(). The engine holds no thread, clock,
// socket or file and draws randomness (election timeouts, snapshot transfer
// ids) only from the Rng it is given, so a seed replays a run bit for bit.
//
// Ownership: the LogStore and the StateMachine are not owned and must
// outlive the engine. The engine reads the LogStore (entries, terms, hard
// state) but writes it only through compact(): every other write is the
// host's, from a Ready. The engine calls the StateMachine only to snapshot
// it (open_snapshot, to send a lagging follower the state in chunks) and to
// restore it (begin_restore, from a leader's chunks); committed entries are
// applied by the host. Without a StateMachine (nullptr) the engine neither
// sends nor receives snapshots, and after a restart it hands out again every
// committed entry after the LogStore's snapshot.
//
// The Ready contract (etcd-io/raft's, with the leader's parallel write of
// Raft thesis 10.2.1). While has_ready(), the host takes one Ready and:
//   1. sends ready.messages at once;
//   2. persists ready.snapshot (LogStore::install_snapshot), ready.entries
//      (LogStore::append) and ready.hard_state (LogStore::set_hard_state),
//      in that order, then LogStore::sync() when ready.must_sync();
//   3. only then sends ready.messages_after_persist;
//   4. applies ready.committed_entries in order, and serves each of
//      ready.read_states once the state machine has applied its index;
//   5. calls advance(ready), which tells the engine that step 2 is durable:
//      only then does a leader count its own copy of the entries towards
//      commit, and a candidate its own vote.
// Between ready() and advance() the host may go on calling tick(), step()
// and the requests (the disk write runs meanwhile); ready() may not be called
// again before advance(). A host that crashes before advance() loses nothing
// it has acknowledged: whatever was not durable was never promised.
//
// Errors: requests answer kNotLeader (the message names the leader hint; see
// leader()), kBusy (a bound is full or a change is pending; retry later),
// kInvalidArgument. step() answers kInvalidArgument for a malformed message
// and drops it. A broken invariant aborts (NN_ASSERT); no exception leaves the
// engine.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "nodenomad/raft/conf_change.hpp"
#include "nodenomad/raft/message.hpp"
#include "nodenomad/raft/raft_config.hpp"
#include "nodenomad/raft/ready.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/state_machine.hpp"
#include "nodenomad/status.hpp"

namespace nodenomad {

class RaftCore;

// Where a proposal landed in the leader's log. It is committed once an entry
// with this index and term is handed out in Ready::committed_entries; if a
// different term shows up at that index, the proposal was lost.
struct ProposeResult {
  LogIndex index;
  Term term;
  bool operator==(const ProposeResult&) const = default;
};

enum class ProgressState : std::uint8_t {
  kProbe = 0,      // one append per heartbeat until the follower's log matches
  kReplicate = 1,  // optimistic pipelined appends within the in-flight bounds
  kSnapshot = 2,   // an InstallSnapshot transfer is in progress
};

// The leader's view of one peer (for metrics and tests).
struct PeerProgress {
  LogIndex match;  // highest index known replicated on the peer
  LogIndex next;   // next index to send
  ProgressState state = ProgressState::kProbe;
  std::uint32_t inflight_messages = 0;
  std::uint64_t inflight_bytes = 0;
  bool learner = false;
  bool recent_active = false;
  // While a snapshot is streamed to the peer (state kSnapshot): the index it
  // covers, the bytes read from the state machine and sent, and the bytes
  // the peer acknowledged. Zero otherwise.
  LogIndex snapshot_index;
  std::uint64_t snapshot_bytes_sent = 0;
  std::uint64_t snapshot_bytes_acked = 0;
};

class RaftEngine {
 public:
  // Opens the group from what `log_store` holds: hard state (term, vote,
  // commit), snapshot metadata and configuration, then the configuration
  // changes committed in the log. A node whose store is empty and was never
  // bootstrapped has no configuration: it waits to be contacted by a leader
  // that added it. kInvalidArgument for a bad config, kCorruption when the
  // store contradicts itself (e.g. a commit index past its last entry).
  static Result<std::unique_ptr<RaftEngine>> open(const RaftConfig& config, LogStore& log_store,
                                                  StateMachine* state_machine, Rng rng);

  // Writes the first configuration of a new group into an empty store (a
  // snapshot at index 0 holding `initial`), durably. Every founding member
  // bootstraps the same configuration; a node added later does not.
  // kAlreadyExists when the store is not empty.
  static Status bootstrap(LogStore& log_store, const ConfState& initial);

  RaftEngine(const RaftEngine&) = delete;
  RaftEngine& operator=(const RaftEngine&) = delete;
  ~RaftEngine();

  // --- inputs ---
  void tick();
  // kInvalidArgument, and the message is dropped, when it is not addressed to
  // this node, claims to come from it, has an unknown type, or carries
  // entries that are not contiguous after (index, log_term) or are newer
  // than the sender's term. Responses from non-members are ignored.
  Status step(const Message& message);

  // Appends `command` to the leader's log. kNotLeader on a follower;
  // kBusy when max_uncommitted_bytes is reached or a leadership transfer is
  // in progress. Proposals made before the next ready() travel together in
  // one append message per follower (batching).
  Result<ProposeResult> propose(std::string command);
  // Starts an election now (pre-vote first when configured). kInvalidArgument
  // when this node is not a voter.
  Status campaign();
  // Requests a linearizable read; its ReadState (index, context) arrives in a
  // later Ready. On a follower the request goes to the leader. kNotLeader
  // when no leader is known; kBusy when max_pending_reads are waiting.
  // With allow_lease false, a leader in ReadMode::kLease still confirms this
  // read with a heartbeat round (a client asked for ReadIndex explicitly).
  Status read_index(std::string context, bool allow_lease = true);
  // Hands leadership to `to`, a voter: the leader stops accepting proposals,
  // brings `to` up to date, then sends it TimeoutNow. Abandoned after an
  // election timeout.
  Status transfer_leadership(const NodeId& to);
  // Proposes a membership change (see conf_change.hpp). kBusy while a
  // change or the leader's first entry is uncommitted; kInvalidArgument for
  // a change that does not apply to the current configuration.
  Result<ProposeResult> propose_conf_change(const ConfChange& change);
  // Records that the state machine's state at `index` is durable, so the log
  // up to `index` may go: LogStore::compact(). kInvalidArgument unless index
  // <= applied_index(), the durable log and the state machine's
  // last_applied_index() (a lagging follower is sent the state machine's
  // snapshot, which must cover everything compacted).
  Status compact(LogIndex index);
  // The transport could not reach `peer`: stop pipelining to it and probe.
  void report_unreachable(const NodeId& peer);
  // A snapshot source that was not ready (SnapshotSource::chunk_ready) may
  // now have chunks: send what the transfers' windows allow.
  void snapshot_chunks_ready();

  // --- output ---
  bool has_ready() const;
  // Precondition: has_ready() and no Ready outstanding.
  Ready ready();
  // Precondition: `ready` is the outstanding Ready, fully handled.
  void advance(const Ready& ready);

  // --- inspection (tests, metrics, the Invariants checker) ---
  const NodeId& id() const;
  Term term() const;
  RaftRole role() const;
  // The leader this node follows (itself when leading); empty if unknown.
  NodeId leader() const;
  HardState hard_state() const;
  LogIndex commit_index() const;
  // The last committed entry handed out for application (or restored).
  LogIndex applied_index() const;
  LogIndex first_index() const;
  LogIndex last_index() const;
  // The engine's whole view of the log, durable or not.
  Result<Term> term_at(LogIndex index) const;
  Result<std::vector<Entry>> entries(LogIndex lo, LogIndex hi, std::uint64_t max_bytes) const;
  ConfState conf_state() const;
  // The leader's view of `peer`; nullopt on a non-leader or for a non-member.
  std::optional<PeerProgress> progress(const NodeId& peer) const;
  // Payload bytes the leader appended that are not yet committed.
  std::uint64_t uncommitted_bytes() const;
  // The peer a leadership transfer is heading to; empty if none.
  NodeId transfer_target() const;

 private:
  explicit RaftEngine(std::unique_ptr<RaftCore> core);
  std::unique_ptr<RaftCore> core_;
};

}  // namespace nodenomad
