// Log replication: proposals, appends (batched, pipelined, flow-controlled),
// heartbeats, fast conflict backtracking and the commit rule.
#include <fmt/format.h>

#include <algorithm>

#include "nodenomad/logging.hpp"
#include "raft/raft_core.hpp"

namespace nodenomad {

Result<ProposeResult> RaftCore::append_local(EntryType type, std::string data) {
  const Entry e{term_, log_.last_index().next(), type, std::move(data)};
  uncommitted_bytes_ += e.data.size();
  log_.append(std::span<const Entry>(&e, 1));
  // Proposals made before the next ready() leave together: one append per
  // follower carries the whole batch.
  broadcast_pending_ = true;
  return ProposeResult{e.index, e.term};
}

Result<ProposeResult> RaftCore::propose(std::string command) {
  if (role_ != RaftRole::kLeader) {
    return Status::not_leader(fmt::format("raft {}: not the leader; leader hint: {}", id().str(),
                                          leader_.str()));
  }
  if (!transfer_target_.empty()) {
    return Status::busy(fmt::format("raft {}: leadership is moving to {}", id().str(),
                                    transfer_target_.str()));
  }
  if (uncommitted_bytes_ > 0 && command.size() > config_.max_uncommitted_bytes - std::min(
                                    config_.max_uncommitted_bytes, uncommitted_bytes_)) {
    return Status::busy(fmt::format("raft {}: {} uncommitted bytes; the limit is {}", id().str(),
                                    uncommitted_bytes_, config_.max_uncommitted_bytes));
  }
  return append_local(EntryType::kNormal, std::move(command));
}

void RaftCore::update_self_progress() {
  Progress* self = tracker_.find(id());
  if (self == nullptr) return;  // a leader that is being removed
  self->maybe_update(log_.durable_last_index());
  self->ack_round(heartbeat_round_);
  maybe_commit();
}

bool RaftCore::send_append(const NodeId& to, bool send_if_empty) {
  Progress* p = tracker_.find(to);
  if (p == nullptr || to == id() || p->paused()) return false;
  const LogIndex prev = p->next().prev();
  const Result<Term> prev_term = log_.term(prev);
  if (!prev_term.is_ok()) {
    start_snapshot(to);  // the entries the follower needs are compacted
    return false;
  }
  std::vector<Entry> entries;
  if (p->next() <= log_.last_index()) {
    Result<std::vector<Entry>> read =
        log_.entries(p->next(), log_.last_index().next(), config_.max_append_bytes);
    if (!read.is_ok()) {
      start_snapshot(to);
      return false;
    }
    entries = std::move(read).value();
  }
  if (entries.empty() && !send_if_empty) return false;
  std::uint64_t bytes = 0;
  for (const Entry& e : entries) bytes += e.data.size();
  const LogIndex last = entries.empty() ? prev : entries.back().index;
  p->sent_entries(entries.size(), last, bytes);
  Message out = make_message(MessageType::kAppend, to);
  out.index = prev;
  out.log_term = *prev_term;
  out.entries = std::move(entries);
  out.commit = log_.committed();
  send(std::move(out));
  return true;
}

void RaftCore::broadcast_append() {
  for (const auto& [peer, p] : tracker_.progress()) {
    if (peer == id() || !send_append(peer, true)) continue;
    // Pipelining: a follower in the replicate state gets the rest of the
    // backlog at once, up to its in-flight window (a probe pauses here).
    while (send_append(peer, false)) {
    }
  }
}

void RaftCore::flush_broadcast() {
  if (!broadcast_pending_) return;
  broadcast_pending_ = false;
  if (role_ == RaftRole::kLeader) broadcast_append();
}

void RaftCore::broadcast_heartbeat() {
  const std::uint64_t round = new_heartbeat_round();
  for (const auto& [peer, p] : tracker_.progress()) {
    if (peer == id()) continue;
    // A follower may commit only what it is known to hold.
    Message out = make_message(MessageType::kHeartbeat, peer);
    out.commit = std::min(p.match(), log_.committed());
    out.round = round;
    send(std::move(out));
  }
}

void RaftCore::reject_stale_leader(const Message& m) {
  Message out = make_message(MessageType::kAppendResponse, m.from);
  out.term = term_;
  send(std::move(out));
}

void RaftCore::handle_append(const Message& m) {
  if (m.index == LogIndex(0) && tracker_.conf() == ConfState{}) {
    // We were never bootstrapped: the group's first configuration lives in
    // the snapshot at index 0, which we lack. Refusing index 0 (which every
    // configured node accepts) asks the leader for a snapshot.
    Message out = make_message(MessageType::kAppendResponse, m.from);
    out.reject = true;
    send(std::move(out));
    return;
  }
  if (m.index < log_.committed()) {
    // Everything up to our commit is already settled; say where we are.
    Message out = make_message(MessageType::kAppendResponse, m.from);
    out.index = log_.committed();
    send(std::move(out));
    return;
  }
  const std::optional<LogIndex> last_new =
      log_.maybe_append(m.index, m.log_term, m.commit, m.entries);
  if (last_new) {
    after_commit();
    Message out = make_message(MessageType::kAppendResponse, m.from);
    out.index = *last_new;
    send(std::move(out));
    return;
  }
  // Fast backtracking: the last index at or below the rejected one whose
  // term is at most the leader's term there; the leader skips to it.
  const auto [hint_index, hint_term] = log_.find_conflict_by_term(m.index, m.log_term);
  Message out = make_message(MessageType::kAppendResponse, m.from);
  out.index = m.index;
  out.reject = true;
  out.hint_index = hint_index;
  out.hint_term = hint_term;
  send(std::move(out));
}

void RaftCore::handle_append_response(const Message& m) {
  Progress* p = tracker_.find(m.from);
  if (p == nullptr) return;
  p->set_recent_active(true);
  if (m.reject) {
    if (m.index == LogIndex(0)) {
      start_snapshot(m.from);  // a new node without the first configuration
      return;
    }
    LogIndex next_probe = m.hint_index;
    if (m.hint_term > Term(0)) {
      next_probe = log_.find_conflict_by_term(m.hint_index, m.hint_term).first;
    }
    if (p->probe_denies_match(m.index)) {
      // Without this the probe would repeat forever: next never goes below
      // match + 1 (found by the simulator's rejoin fault).
      nodenomad::log(LogLevel::kWarn, "raft",
          fmt::format("{}: {} no longer holds index {}, which it acknowledged (its log ends "
                      "near {}); probing it again from there",
                      id().str(), m.from.str(), m.index.value(), m.hint_index.value()));
      p->forget_match();
    }
    if (p->maybe_decrease_to(m.index, next_probe)) {
      if (p->state() == ProgressState::kReplicate) p->become_probe();
      send_append(m.from, true);
    }
    return;
  }
  const bool was_paused = p->paused();
  if (!p->maybe_update(m.index)) return;
  switch (p->state()) {
    case ProgressState::kProbe: p->become_replicate(); break;
    case ProgressState::kSnapshot:
      // The follower caught up through appends while a transfer ran.
      if (p->match() >= log_.snapshot_index()) abort_snapshot(m.from);
      break;
    case ProgressState::kReplicate: p->inflights().free_le(m.index); break;
  }
  if (maybe_commit()) {
    broadcast_pending_ = true;
    // A committed configuration change may have replaced the progress map
    // or removed this leader.
    if (role_ != RaftRole::kLeader || (p = tracker_.find(m.from)) == nullptr) return;
  } else if (was_paused) {
    send_append(m.from, true);
  }
  // Fill the window; each round sends more entries or stops (bounded by
  // the in-flight limits and the log's end).
  while (send_append(m.from, false)) {
  }
  if (m.from == transfer_target_ && p->match() == log_.last_index()) {
    send_timeout_now(m.from);
    // A leader removed from the voters stops once its successor holds its log.
    if (!tracker_.is_voter(id())) become_follower(term_, NodeId());
  }
}

void RaftCore::handle_heartbeat(const Message& m) {
  follower_commit_to(std::min(m.commit, log_.last_index()));
  Message out = make_message(MessageType::kHeartbeatResponse, m.from);
  out.round = m.round;
  send(std::move(out));
}

void RaftCore::handle_heartbeat_response(const Message& m) {
  Progress* p = tracker_.find(m.from);
  if (p == nullptr) return;
  p->set_recent_active(true);
  p->on_heartbeat_response();
  p->ack_round(m.round);
  if (p->match() < log_.last_index()) send_append(m.from, true);
  release_reads();
}

bool RaftCore::maybe_commit() {
  if (role_ != RaftRole::kLeader) return false;
  if (!log_.maybe_commit(tracker_.committed_index(), term_)) return false;
  after_commit();
  return true;
}

void RaftCore::follower_commit_to(LogIndex index) {
  if (index <= log_.committed()) return;
  log_.commit_to(index);
  after_commit();
}

void RaftCore::after_commit() {
  apply_committed_conf_changes();
  if (role_ == RaftRole::kLeader) {
    start_waiting_reads();
    maybe_leave_joint();
  }
}

}  // namespace nodenomad
