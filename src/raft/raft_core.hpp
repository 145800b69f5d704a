// RaftCore: the engine behind RaftEngine's interface. One class, its
// methods split by concern across election.cpp, replication.cpp,
// read_only.cpp, membership.cpp, snapshot.cpp and raft_core.cpp (open,
// step dispatch, Ready). Not thread-safe, like the engine.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "nodenomad/raft/raft_engine.hpp"
#include "raft/raft_log.hpp"
#include "raft/tracker.hpp"

namespace nodenomad {

inline Message make_message(MessageType type, const NodeId& to) {
  Message m;
  m.type = type;
  m.to = to;
  return m;
}

// A read request waiting for its heartbeat round (round 0: waiting for the
// leader's first commit in its term).
struct PendingRead {
  std::string context;
  NodeId from;  // this node for a local request
  LogIndex index;
  std::uint64_t round = 0;
};

// The leader's side of one InstallSnapshot transfer.
struct SnapshotSend {
  std::unique_ptr<SnapshotSource> source;  // released once the last chunk is read
  SnapshotMeta meta;
  std::uint64_t transfer_id = 0;
  std::uint64_t next_offset = 0;      // offset of the next chunk to read
  std::deque<SnapshotChunk> unacked;  // at most max_snapshot_chunks_in_flight
  bool last_sent = false;
  std::uint32_t idle_ticks = 0;       // ticks since the follower last acknowledged
};

// The follower's side of one InstallSnapshot transfer.
struct SnapshotReceive {
  NodeId from;
  Term term;  // the leader's term; a transfer never outlives it
  std::uint64_t transfer_id = 0;
  SnapshotMeta meta;
  std::uint64_t expected_offset = 0;
  std::unique_ptr<SnapshotSink> sink;
  bool complete = false;  // every byte written; finish() waits for advance()
};

class RaftCore {
 public:
  RaftCore(const RaftConfig& config, LogStore& store, StateMachine* state_machine, Rng rng,
           LogIndex committed, LogIndex applied);

  // raft_core.cpp: recovery, dispatch, Ready.
  static Result<std::unique_ptr<RaftCore>> open(const RaftConfig& config, LogStore& store,
                                                StateMachine* state_machine, Rng rng);
  void tick();
  Status step(const Message& m);
  bool has_ready() const;
  Ready ready();
  void advance(const Ready& ready);
  Status compact(LogIndex index);

  // replication.cpp: proposals.
  Result<ProposeResult> propose(std::string command);
  // election.cpp
  Status campaign();
  Status transfer_leadership(const NodeId& to);
  // read_only.cpp
  Status read_index(std::string context, bool allow_lease);
  // membership.cpp
  Result<ProposeResult> propose_conf_change(const ConfChange& change);
  void report_unreachable(const NodeId& peer);
  // snapshot.cpp: sources that were not ready may be now.
  void pump_snapshots();

  // Inspection.
  const NodeId& id() const { return config_.id; }
  Term term() const { return term_; }
  RaftRole role() const { return role_; }
  const NodeId& leader() const { return leader_; }
  HardState hard_state() const { return {term_, vote_, log_.committed()}; }
  const RaftLog& raft_log() const { return log_; }
  const ConfState& conf_state() const { return tracker_.conf(); }
  std::optional<PeerProgress> progress(const NodeId& peer) const;
  std::uint64_t uncommitted_bytes() const { return uncommitted_bytes_; }
  const NodeId& transfer_target() const { return transfer_target_; }

 private:
  // --- raft_core.cpp ---
  Status validate(const Message& m) const;
  // Applies the term rules; false when the message must be dropped.
  bool handle_term(const Message& m);
  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  // Queues a message: responses wait for persistence, the rest leave at once.
  void send(Message m);
  void recover_conf(const SnapshotMeta& snapshot);

  // --- election.cpp ---
  void tick_election();
  void tick_leader();
  void reset(Term term);
  void become_follower(Term term, const NodeId& leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void start_campaign(bool transfer);
  void request_votes(MessageType type, Term term, bool transfer);
  void poll(const NodeId& from, bool granted);
  bool promotable() const;
  bool in_lease() const;
  void handle_vote_request(const Message& m);
  void handle_timeout_now(const Message& m);
  void send_timeout_now(const NodeId& to);
  void check_quorum();
  void reset_randomized_election_timeout();

  // --- replication.cpp ---
  Result<ProposeResult> append_local(EntryType type, std::string data);
  bool send_append(const NodeId& to, bool send_if_empty);
  void broadcast_append();
  void flush_broadcast();
  void broadcast_heartbeat();
  void handle_append(const Message& m);
  void handle_append_response(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_heartbeat_response(const Message& m);
  void reject_stale_leader(const Message& m);
  // The leader's commit rule: a quorum's match, of the leader's own term.
  bool maybe_commit();
  void follower_commit_to(LogIndex index);
  // Everything that follows a commit advance (configuration, reads).
  void after_commit();
  void update_self_progress();
  void release_entry_cache();  // after advance(): what nobody needs soon leaves the cache

  // --- read_only.cpp ---
  void handle_read_request(std::string context, const NodeId& from, bool allow_lease = true);
  void handle_read_index_response(const Message& m);
  void release_reads();
  void start_waiting_reads();
  void emit_read(const PendingRead& read);
  bool committed_in_term() const;
  bool lease_valid() const;
  std::uint64_t new_heartbeat_round();

  // --- membership.cpp ---
  void apply_committed_conf_changes();
  void switch_conf(const ConfState& conf, LogIndex index);
  void step_down_after_removal();
  void maybe_leave_joint();
  ConfState conf_at(LogIndex index) const;
  Status check_conf_change_allowed() const;

  bool unconfigured() const;
  bool refused_while_unconfigured(const Message& m) const;

  // --- snapshot.cpp ---
  void start_snapshot(const NodeId& to);
  // True when the configuration at `index` names `peer` and a later one
  // leaves it out: a snapshot at `index` would hand a peer that left and
  // came back its former self's place.
  bool names_former_member(const NodeId& peer, LogIndex index) const;
  // Appends an empty entry, so that the state machine's index passes `index`
  // once it commits (configuration changes never reach the state machine),
  // unless this term's last such entry already follows `index`.
  void move_state_past(LogIndex index);
  void pump_snapshot(const NodeId& to);
  void abort_snapshot(const NodeId& to);
  void tick_snapshots();
  void handle_snapshot(const Message& m);
  bool begin_receive(const Message& m);
  void handle_snapshot_response(const Message& m);
  void finish_snapshot();
  void respond_snapshot(const NodeId& to, std::uint64_t transfer_id, std::uint64_t offset,
                        bool last, bool reject, LogIndex index);

  RaftConfig config_;
  LogStore& store_;
  StateMachine* state_machine_;  // may be null
  Rng rng_;

  Term term_;
  NodeId vote_;
  NodeId leader_;
  RaftRole role_ = RaftRole::kFollower;
  RaftLog log_;
  ProgressTracker tracker_;

  std::uint32_t election_elapsed_ = 0;
  std::uint32_t heartbeat_elapsed_ = 0;
  std::uint32_t randomized_election_timeout_ = 0;
  std::uint64_t now_ticks_ = 0;  // ticks since open; the lease's clock

  NodeId transfer_target_;
  bool lease_broken_ = false;  // TimeoutNow sent: another node may lead soon
  // kLease: the node restarted (with a term), so it refuses votes for its
  // first election timeout. A leader's lease counts on its followers not voting for an
  // election timeout after acknowledging it, and a restart must not cut that
  // promise short (memory of the leader is lost in a crash).
  bool start_lease_ = false;
  LogIndex pending_conf_index_;  // the leader's last conf change (or first entry)
  std::uint64_t uncommitted_bytes_ = 0;

  // Configuration in force from each index on: (snapshot index, its conf),
  // then one item per committed change since. Bounded by compaction.
  std::deque<std::pair<LogIndex, ConfState>> conf_history_;

  // Reads (leader) and the heartbeat rounds that confirm them.
  std::uint64_t heartbeat_round_ = 0;
  std::deque<std::pair<std::uint64_t, std::uint64_t>> round_sent_ticks_;  // (round, tick)
  std::deque<PendingRead> pending_reads_;  // at most max_pending_reads
  std::vector<ReadState> read_states_;

  std::map<NodeId, SnapshotSend> snapshot_sends_;
  LogIndex state_nudge_index_;  // the last entry move_state_past() appended
  std::optional<SnapshotReceive> snapshot_receive_;

  std::vector<Message> messages_;
  std::vector<Message> messages_after_persist_;
  bool broadcast_pending_ = false;

  // Ready bookkeeping.
  SoftState prev_soft_;
  HardState prev_hard_;
  bool ready_outstanding_ = false;
  std::uint64_t ready_sequence_ = 0;
  Term handed_self_vote_term_;  // a candidate's vote in the outstanding Ready
};

}  // namespace nodenomad
