// RaftCore: recovery from the LogStore, message dispatch and the Ready cycle.
#include "raft/raft_core.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "nodenomad/logging.hpp"

namespace nodenomad {

namespace {

constexpr std::uint64_t kRecoveryBatchBytes = 4u << 20;

}  // namespace

RaftCore::RaftCore(const RaftConfig& config, LogStore& store, StateMachine* state_machine,
                   Rng rng, LogIndex committed, LogIndex applied)
    : config_(config),
      store_(store),
      state_machine_(state_machine),
      rng_(rng),
      log_(store, committed, applied, config.entry_cache_bytes),
      tracker_(Progress::Window{config.max_inflight_messages, config.max_inflight_bytes,
                                config.max_learner_inflight_bytes}) {}

Result<std::unique_ptr<RaftCore>> RaftCore::open(const RaftConfig& config, LogStore& store,
                                                  StateMachine* state_machine, Rng rng) {
  NN_RETURN_IF_ERROR(validate_raft_config(config));
  const HardState hs = store.hard_state();
  const SnapshotMeta snapshot = store.snapshot_meta();
  const LogIndex last = store.last_index();
  if (hs.commit > last) {
    return Status::corruption(fmt::format(
        "raft {}: the hard state's commit {} is past the log's last index {}", config.id.str(),
        hs.commit.value(), last.value()));
  }
  const LogIndex committed = std::max(hs.commit, snapshot.index);
  LogIndex applied = snapshot.index;
  if (state_machine != nullptr) applied = std::max(applied, state_machine->last_applied_index());
  auto core = std::make_unique<RaftCore>(config, store, state_machine, rng, committed, applied);
  core->term_ = hs.term;
  core->vote_ = hs.vote;
  core->prev_hard_ = hs;
  core->recover_conf(snapshot);
  core->become_follower(hs.term, NodeId());
  // Only a node that has been in a term may have acknowledged a lease.
  core->start_lease_ = config.read_mode == ReadMode::kLease && hs.term > Term(0);
  return core;
}

// The configuration is the snapshot's, then every change committed after
// it; changes past the commit index are tracked until they commit.
void RaftCore::recover_conf(const SnapshotMeta& snapshot) {
  conf_history_.clear();
  conf_history_.emplace_back(snapshot.index, snapshot.conf_state);
  tracker_.set_conf(snapshot.conf_state, log_.last_index().next());
  LogIndex next = log_.first_index();
  const LogIndex end = log_.last_index().next();
  while (next < end) {
    Result<std::vector<Entry>> batch = log_.entries(next, end, kRecoveryBatchBytes);
    NN_ASSERT(batch.is_ok() && !batch->empty(), "recovery read of [", next, ", ", end, "): ",
              batch.status().to_string());
    log_.track_conf_entries(*batch);
    next = batch->back().index.next();
  }
  apply_committed_conf_changes();
}

void RaftCore::tick() {
  ++now_ticks_;
  if (role_ == RaftRole::kLeader) {
    tick_leader();
  } else {
    tick_election();
  }
}

Status RaftCore::validate(const Message& m) const {
  if (m.to != id()) {
    return Status::invalid_argument(fmt::format("raft {}: a {} message addressed to {}",
                                                id().str(), message_type_name(m.type), m.to.str()));
  }
  const auto type = static_cast<std::uint8_t>(m.type);
  if (type == 0 || type > kMaxMessageType) {
    return Status::invalid_argument(fmt::format("raft {}: unknown message type {}", id().str(), type));
  }
  if (m.from.empty() || m.from == id()) {
    return Status::invalid_argument(fmt::format("raft {}: a {} message from '{}'", id().str(),
                                                message_type_name(m.type), m.from.str()));
  }
  if (m.type != MessageType::kAppend && !m.entries.empty()) {
    return Status::invalid_argument(
        fmt::format("raft {}: a {} message carries entries", id().str(), message_type_name(m.type)));
  }
  Term previous = m.log_term;
  for (std::size_t i = 0; i < m.entries.size(); ++i) {
    const Entry& e = m.entries[i];
    if (e.index != m.index + (i + 1) || e.term < previous || e.term > m.term ||
        static_cast<std::uint8_t>(e.type) > static_cast<std::uint8_t>(EntryType::kConfChange)) {
      return Status::invalid_argument(fmt::format(
          "raft {}: append from {} after ({}, {}): entry {} is out of order", id().str(),
          m.from.str(), m.index.value(), m.log_term.value(), i));
    }
    previous = e.term;
  }
  return Status::ok();
}

bool RaftCore::handle_term(const Message& m) {
  const bool vote_request = m.type == MessageType::kVote || m.type == MessageType::kPreVote;
  if (m.term > term_) {
    if (vote_request && !m.transfer && in_lease()) {
      // A node that still hears from its leader refuses to help depose it
      // (check-quorum's lease); it neither votes nor raises its term.
      return false;
    }
    if (m.type == MessageType::kPreVote) return true;  // a pre-vote changes no term
    if (m.type == MessageType::kPreVoteResponse && !m.reject) return true;
    const bool from_leader = m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat ||
                             m.type == MessageType::kSnapshot;
    become_follower(m.term, from_leader ? m.from : NodeId());
    return true;
  }
  if (m.term < term_) {
    if ((config_.check_quorum || config_.pre_vote) &&
        (m.type == MessageType::kAppend || m.type == MessageType::kHeartbeat)) {
      // A leader cut off while we moved on: tell it the term so it steps
      // down (with pre-vote it may otherwise never learn of it).
      reject_stale_leader(m);
    } else if (m.type == MessageType::kPreVote) {
      Message out = make_message(MessageType::kPreVoteResponse, m.from);
      out.term = term_;
      out.reject = true;
      send(std::move(out));
    }
    return false;
  }
  return true;
}

bool RaftCore::unconfigured() const {
  if (log_.last_index() != LogIndex(0)) return false;
  const ConfState& conf = tracker_.conf();
  return conf.voters.empty() && conf.learners.empty();
}

// RaftConfig::unconfigured_votes and members_join_as_learners: what a node
// with no configuration yet may have forgotten. Dropped before the term is
// looked at, so such a message does not even raise the term.
bool RaftCore::refused_while_unconfigured(const Message& m) const {
  if (!unconfigured()) return false;
  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    return !config_.unconfigured_votes;
  }
  if (m.type == MessageType::kSnapshot && config_.members_join_as_learners) {
    return names_voter(m.snapshot.meta.conf_state, id());
  }
  return false;
}

Status RaftCore::step(const Message& m) {
  NN_RETURN_IF_ERROR(validate(m));
  if (refused_while_unconfigured(m)) return Status::ok();
  if (!handle_term(m)) return Status::ok();
  if (m.type == MessageType::kVote || m.type == MessageType::kPreVote) {
    handle_vote_request(m);
    return Status::ok();
  }
  switch (role_) {
    case RaftRole::kLeader: step_leader(m); break;
    case RaftRole::kCandidate:
    case RaftRole::kPreCandidate: step_candidate(m); break;
    case RaftRole::kFollower: step_follower(m); break;
  }
  return Status::ok();
}

void RaftCore::step_leader(const Message& m) {
  switch (m.type) {
    case MessageType::kAppendResponse: handle_append_response(m); break;
    case MessageType::kHeartbeatResponse: handle_heartbeat_response(m); break;
    case MessageType::kSnapshotResponse: handle_snapshot_response(m); break;
    case MessageType::kReadIndex: handle_read_request(m.context, m.from); break;
    default: break;  // votes arriving late, or a peer's confusion: nothing to do
  }
}

void RaftCore::step_candidate(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
    case MessageType::kHeartbeat:
    case MessageType::kSnapshot:
      // A leader of our term exists: follow it.
      become_follower(m.term, m.from);
      step_follower(m);
      break;
    case MessageType::kPreVoteResponse:
      if (role_ == RaftRole::kPreCandidate) poll(m.from, !m.reject);
      break;
    case MessageType::kVoteResponse:
      if (role_ == RaftRole::kCandidate) poll(m.from, !m.reject);
      break;
    default: break;
  }
}

void RaftCore::step_follower(const Message& m) {
  switch (m.type) {
    case MessageType::kAppend:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_append(m);
      break;
    case MessageType::kHeartbeat:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_heartbeat(m);
      break;
    case MessageType::kSnapshot:
      election_elapsed_ = 0;
      leader_ = m.from;
      handle_snapshot(m);
      break;
    case MessageType::kTimeoutNow: handle_timeout_now(m); break;
    case MessageType::kReadIndexResponse: handle_read_index_response(m); break;
    default: break;
  }
}

void RaftCore::send(Message m) {
  m.from = id();
  if (m.term == Term(0)) m.term = term_;
  if (is_response(m.type)) {
    messages_after_persist_.push_back(std::move(m));
  } else {
    messages_.push_back(std::move(m));
  }
}

bool RaftCore::has_ready() const {
  if (ready_outstanding_) return false;
  const SoftState soft{role_, leader_};
  return soft != prev_soft_ || hard_state() != prev_hard_ || log_.has_unstable() ||
         !messages_.empty() || !messages_after_persist_.empty() || log_.has_next_committed() ||
         !read_states_.empty() || broadcast_pending_;
}

Ready RaftCore::ready() {
  NN_ASSERT(!ready_outstanding_, "ready() while Ready ", ready_sequence_, " is outstanding");
  flush_broadcast();
  Ready rd;
  rd.sequence = ++ready_sequence_;
  rd.committed_entries = log_.next_committed_entries(config_.max_apply_bytes_per_ready);
  if (!rd.committed_entries.empty()) {
    std::uint64_t bytes = 0;
    for (const Entry& e : rd.committed_entries) bytes += e.data.size();
    uncommitted_bytes_ -= std::min(uncommitted_bytes_, bytes);
    log_.applied_to(rd.committed_entries.back().index);
  }
  rd.snapshot = log_.unstable_snapshot();
  rd.entries = log_.unstable_entries();
  if (hard_state() != prev_hard_) {
    rd.hard_state = hard_state();
    prev_hard_ = hard_state();
  }
  const SoftState soft{role_, leader_};
  if (soft != prev_soft_) {
    rd.soft_state = soft;
    prev_soft_ = soft;
  }
  rd.messages = std::move(messages_);
  rd.messages_after_persist = std::move(messages_after_persist_);
  rd.read_states = std::move(read_states_);
  messages_.clear();
  messages_after_persist_.clear();
  read_states_.clear();
  handed_self_vote_term_ = (role_ == RaftRole::kCandidate && vote_ == id()) ? term_ : Term(0);
  ready_outstanding_ = true;
  return rd;
}

void RaftCore::advance(const Ready& rd) {
  NN_ASSERT(ready_outstanding_ && rd.sequence == ready_sequence_, "advance(", rd.sequence,
            ") but the outstanding Ready is ", ready_outstanding_ ? ready_sequence_ : 0);
  ready_outstanding_ = false;
  if (rd.snapshot) log_.stable_snapshot_to(rd.snapshot->index);
  if (!rd.entries.empty()) log_.stable_to(rd.entries.back().index, rd.entries.back().term);
  release_entry_cache();
  if (role_ == RaftRole::kLeader) {
    update_self_progress();
  } else if (role_ == RaftRole::kCandidate && handed_self_vote_term_ == term_) {
    // Our own vote counts only once it is durable.
    poll(id(), true);
  }
  if (snapshot_receive_ && snapshot_receive_->complete) finish_snapshot();
}

// Cached entries stay while the state machine or, on a leader, a follower
// may still need them.
void RaftCore::release_entry_cache() {
  LogIndex keep_after = log_.applied();
  if (role_ == RaftRole::kLeader) {
    for (const auto& [peer, progress] : tracker_.progress()) {
      if (peer != id()) keep_after = std::min(keep_after, progress.match());
    }
  }
  log_.release_cache_to(keep_after);
}

Status RaftCore::compact(LogIndex index) {
  if (index <= log_.snapshot_index()) return Status::ok();
  // The state machine must reflect `index`: a lagging follower will be sent
  // its snapshot, which must cover everything compacted.
  const LogIndex sm_applied =
      state_machine_ != nullptr ? state_machine_->last_applied_index() : log_.applied();
  if (index > log_.applied() || index > log_.durable_last_index() || index > sm_applied) {
    return Status::invalid_argument(fmt::format(
        "raft {}: compact({}) past the applied index {}, the durable index {} or the state "
        "machine's applied index {}",
        id().str(), index.value(), log_.applied().value(), log_.durable_last_index().value(),
        sm_applied.value()));
  }
  NN_ASSIGN_OR_RETURN(const Term term, log_.term(index));
  const SnapshotMeta meta{index, term, conf_at(index)};
  NN_RETURN_IF_ERROR(store_.compact(meta));
  while (conf_history_.size() > 1 && conf_history_[1].first <= index) conf_history_.pop_front();
  conf_history_.front() = {index, meta.conf_state};
  return Status::ok();
}

std::optional<PeerProgress> RaftCore::progress(const NodeId& peer) const {
  if (role_ != RaftRole::kLeader) return std::nullopt;
  const Progress* p = tracker_.find(peer);
  if (p == nullptr) return std::nullopt;
  PeerProgress info = p->info();
  if (auto it = snapshot_sends_.find(peer); it != snapshot_sends_.end()) {
    const SnapshotSend& s = it->second;
    std::uint64_t unacked = 0;
    for (const SnapshotChunk& c : s.unacked) unacked += c.data.size();
    info.snapshot_index = s.meta.index;
    info.snapshot_bytes_sent = s.next_offset;
    info.snapshot_bytes_acked = s.next_offset - unacked;
  }
  return info;
}

}  // namespace nodenomad
