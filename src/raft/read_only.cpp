// Linearizable reads: ReadIndex confirmed by a heartbeat round, the lease
// shortcut, and followers' reads forwarded to the leader.
//
// A read taken at commit index C is linearizable once the leader knows it
// was still the leader after the read arrived: a quorum acknowledged a
// heartbeat round sent after the request. Until the leader has committed an
// entry of its own term, C may lag entries an earlier leader committed, so
// requests wait for that first commit.
#include <fmt/format.h>

#include "raft/raft_core.hpp"

namespace nodenomad {

namespace {

// Sent rounds remembered for the lease; older ones are dropped, which only
// ever shortens the lease.
constexpr std::size_t kMaxRememberedRounds = 4096;

}  // namespace

bool RaftCore::committed_in_term() const {
  return log_.term_or_zero(log_.committed()) == term_;
}

std::uint64_t RaftCore::new_heartbeat_round() {
  ++heartbeat_round_;
  if (Progress* self = tracker_.find(id())) self->ack_round(heartbeat_round_);
  round_sent_ticks_.emplace_back(heartbeat_round_, now_ticks_);
  if (round_sent_ticks_.size() > kMaxRememberedRounds) round_sent_ticks_.pop_front();
  return heartbeat_round_;
}

bool RaftCore::lease_valid() const {
  if (config_.read_mode != ReadMode::kLease || role_ != RaftRole::kLeader || lease_broken_) {
    return false;
  }
  const std::uint64_t acked = tracker_.quorum_round();
  // The lease runs from when the acknowledged round was sent, not from when
  // its acknowledgements came back.
  for (auto it = round_sent_ticks_.rbegin(); it != round_sent_ticks_.rend(); ++it) {
    if (it->first > acked) continue;
    if (it->first < acked) return false;  // that round's send time is forgotten
    const std::uint64_t lease_ticks = config_.election_timeout_ticks - config_.lease_drift_ticks;
    return now_ticks_ < it->second + lease_ticks;
  }
  return false;
}

Status RaftCore::read_index(std::string context, bool allow_lease) {
  if (role_ == RaftRole::kLeader) {
    if (pending_reads_.size() >= config_.max_pending_reads) {
      return Status::busy(fmt::format("raft {}: {} reads are waiting", id().str(),
                                      pending_reads_.size()));
    }
    handle_read_request(std::move(context), id(), allow_lease);
    return Status::ok();
  }
  if (leader_.empty()) {
    return Status::not_leader(fmt::format("raft {}: no leader known for a read", id().str()));
  }
  Message out = make_message(MessageType::kReadIndex, leader_);
  out.context = std::move(context);
  send(std::move(out));
  return Status::ok();
}

void RaftCore::handle_read_request(std::string context, const NodeId& from, bool allow_lease) {
  // A remote request over the bound is dropped; the follower's host times
  // out and retries, as it would for a lost message.
  if (pending_reads_.size() >= config_.max_pending_reads) return;
  PendingRead read{std::move(context), from, log_.committed(), 0};
  if (!committed_in_term()) {
    pending_reads_.push_back(std::move(read));
    return;
  }
  if (tracker_.all_voters().size() == 1 && tracker_.is_voter(id())) {
    emit_read(read);  // a group of one is its own quorum
    return;
  }
  if (allow_lease && lease_valid()) {
    emit_read(read);
    return;
  }
  read.round = heartbeat_round_ + 1;
  pending_reads_.push_back(std::move(read));
  broadcast_heartbeat();
}

void RaftCore::start_waiting_reads() {
  if (pending_reads_.empty() || pending_reads_.back().round != 0 || !committed_in_term()) return;
  // The first commit of the term: the waiting reads take today's commit
  // index and share one heartbeat round.
  const std::uint64_t round = heartbeat_round_ + 1;
  for (PendingRead& read : pending_reads_) {
    if (read.round == 0) {
      read.index = log_.committed();
      read.round = round;
    }
  }
  broadcast_heartbeat();
  release_reads();
}

void RaftCore::release_reads() {
  const std::uint64_t acked = tracker_.quorum_round();
  while (!pending_reads_.empty() && pending_reads_.front().round != 0 &&
         pending_reads_.front().round <= acked) {
    emit_read(pending_reads_.front());
    pending_reads_.pop_front();
  }
}

void RaftCore::emit_read(const PendingRead& read) {
  if (read.from == id()) {
    read_states_.push_back(ReadState{read.index, read.context});
  } else {
    Message out = make_message(MessageType::kReadIndexResponse, read.from);
    out.index = read.index;
    out.context = read.context;
    send(std::move(out));
  }
}

void RaftCore::handle_read_index_response(const Message& m) {
  read_states_.push_back(ReadState{m.index, m.context});
}

}  // namespace nodenomad
