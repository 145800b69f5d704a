// Elections: timeouts, pre-vote, votes, check-quorum and leadership transfer.
#include <fmt/format.h>

#include "nodenomad/logging.hpp"
#include "raft/raft_core.hpp"

namespace nodenomad {

void RaftCore::reset_randomized_election_timeout() {
  const std::uint32_t t = config_.election_timeout_ticks;
  // The default spread draws exactly as before, so existing seeds replay.
  const std::uint32_t spread =
      config_.election_timeout_max_ticks == 0 ? t : config_.election_timeout_max_ticks - t + 1;
  randomized_election_timeout_ = t + static_cast<std::uint32_t>(rng_.uniform(spread));
}

bool RaftCore::promotable() const { return tracker_.is_voter(id()); }

bool RaftCore::in_lease() const {
  return config_.check_quorum && (!leader_.empty() || start_lease_) &&
         election_elapsed_ < config_.election_timeout_ticks;
}

void RaftCore::tick_election() {
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_timeout_ticks) start_lease_ = false;
  if (promotable() && election_elapsed_ >= randomized_election_timeout_) {
    election_elapsed_ = 0;
    start_campaign(false);
  }
}

void RaftCore::tick_leader() {
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= config_.election_timeout_ticks) {
    election_elapsed_ = 0;
    if (config_.check_quorum) {
      check_quorum();
      if (role_ != RaftRole::kLeader) return;
    }
    // A transfer that has not finished within an election timeout is dropped.
    transfer_target_ = NodeId();
    // A leader removed from the voters tries again to hand over.
    if (!tracker_.is_voter(id())) {
      step_down_after_removal();
      if (role_ != RaftRole::kLeader) return;
    }
    // A leave of a joint configuration that the dropped transfer deferred
    // (it committed meanwhile) is proposed now: nothing else would, since
    // it is only tried when the commit index moves.
    maybe_leave_joint();
  }
  if (heartbeat_elapsed_ >= config_.heartbeat_interval_ticks) {
    heartbeat_elapsed_ = 0;
    broadcast_heartbeat();
  }
  tick_snapshots();
}

void RaftCore::check_quorum() {
  if (Progress* self = tracker_.find(id())) self->set_recent_active(true);
  if (!tracker_.quorum_active()) {
    nodenomad::log(LogLevel::kInfo, "raft",
        fmt::format("{}: no quorum heard from in an election timeout; stepping down at term {}",
                    id().str(), term_.value()));
    become_follower(term_, NodeId());
    return;
  }
  for (auto& [peer, p] : tracker_.progress()) p.set_recent_active(peer == id());
}

void RaftCore::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = NodeId();
  }
  leader_ = NodeId();
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_election_timeout();
  transfer_target_ = NodeId();
  lease_broken_ = false;
  tracker_.reset_votes();
  tracker_.reset_progress(log_.last_index().next());
  pending_conf_index_ = LogIndex(0);
  uncommitted_bytes_ = 0;
  pending_reads_.clear();
  round_sent_ticks_.clear();
  snapshot_sends_.clear();
  broadcast_pending_ = false;
}

void RaftCore::become_follower(Term term, const NodeId& leader) {
  reset(term);
  role_ = RaftRole::kFollower;
  leader_ = leader;
}

void RaftCore::become_pre_candidate() {
  NN_ASSERT(role_ != RaftRole::kLeader, "a leader cannot become a pre-candidate");
  // The term and vote stay: a pre-vote asks a question and changes nothing.
  tracker_.reset_votes();
  role_ = RaftRole::kPreCandidate;
  leader_ = NodeId();
  election_elapsed_ = 0;
  reset_randomized_election_timeout();
}

void RaftCore::become_candidate() {
  NN_ASSERT(role_ != RaftRole::kLeader, "a leader cannot become a candidate");
  reset(term_.next());
  vote_ = id();
  role_ = RaftRole::kCandidate;
}

void RaftCore::become_leader() {
  NN_ASSERT(role_ == RaftRole::kCandidate, "only a candidate becomes leader");
  reset(term_);
  role_ = RaftRole::kLeader;
  leader_ = id();
  for (auto& [peer, p] : tracker_.progress()) p.set_recent_active(true);
  update_self_progress();
  // The no-op of the new term: committing it commits every earlier entry,
  // and until it commits the leader serves no read and takes no conf change.
  const Result<ProposeResult> noop = append_local(EntryType::kNormal, std::string());
  NN_ASSERT(noop.is_ok(), "the leader's first entry: ", noop.status().to_string());
  pending_conf_index_ = noop->index;
  nodenomad::log(LogLevel::kInfo, "raft",
      fmt::format("{}: leader at term {}", id().str(), term_.value()));
}

void RaftCore::request_votes(MessageType type, Term term, bool transfer) {
  for (const NodeId& voter : tracker_.all_voters()) {
    if (voter == id()) continue;
    Message out = make_message(type, voter);
    out.term = term;
    out.index = log_.last_index();
    out.log_term = log_.last_term();
    out.transfer = transfer;
    send(std::move(out));
  }
}

void RaftCore::start_campaign(bool transfer) {
  if (role_ == RaftRole::kLeader) return;
  if (config_.pre_vote && !transfer) {
    become_pre_candidate();
    request_votes(MessageType::kPreVote, term_.next(), false);
    poll(id(), true);  // a pre-vote needs no persistence
  } else {
    become_candidate();
    // Our own vote is counted in advance(), once the hard state is durable.
    request_votes(MessageType::kVote, term_, transfer);
  }
}

Status RaftCore::campaign() {
  if (!promotable()) {
    return Status::invalid_argument(
        fmt::format("raft {}: not a voter of the group; cannot campaign", id().str()));
  }
  if (role_ == RaftRole::kLeader) return Status::ok();
  start_campaign(false);
  return Status::ok();
}

void RaftCore::poll(const NodeId& from, bool granted) {
  tracker_.record_vote(from, granted);
  switch (tracker_.tally()) {
    case VoteResult::kPending: break;
    case VoteResult::kWon:
      if (role_ == RaftRole::kPreCandidate) {
        // The pre-vote passed: the real election, which leases still bind.
        become_candidate();
        request_votes(MessageType::kVote, term_, false);
      } else {
        become_leader();
        broadcast_pending_ = true;
      }
      break;
    case VoteResult::kLost:
      become_follower(term_, NodeId());
      break;
  }
}

void RaftCore::handle_vote_request(const Message& m) {
  const bool pre = m.type == MessageType::kPreVote;
  const bool can_vote = vote_ == m.from || (vote_.empty() && leader_.empty()) ||
                        (pre && m.term > term_);
  const MessageType response = pre ? MessageType::kPreVoteResponse : MessageType::kVoteResponse;
  if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
    // A granted pre-vote answers in the term asked about, so the
    // pre-candidate counts it; a real vote is recorded (persisted before the
    // response leaves).
    Message out = make_message(response, m.from);
    out.term = m.term;
    send(std::move(out));
    if (!pre) {
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    Message out = make_message(response, m.from);
    out.term = term_;
    out.reject = true;
    send(std::move(out));
  }
}

void RaftCore::handle_timeout_now(const Message& m) {
  if (!promotable()) return;
  nodenomad::log(LogLevel::kInfo, "raft",
      fmt::format("{}: TimeoutNow from {} at term {}; campaigning", id().str(), m.from.str(),
                  term_.value()));
  start_campaign(true);
}

void RaftCore::send_timeout_now(const NodeId& to) {
  // From here another node may win an election without waiting for our
  // followers' leases, so this leader's lease means nothing any more.
  lease_broken_ = true;
  Message out = make_message(MessageType::kTimeoutNow, to);
  send(std::move(out));
}

Status RaftCore::transfer_leadership(const NodeId& to) {
  if (role_ != RaftRole::kLeader) {
    return Status::not_leader(fmt::format("raft {}: not the leader; leader hint: {}", id().str(),
                                          leader_.str()));
  }
  if (to == id()) return Status::ok();
  if (!tracker_.is_voter(to)) {
    return Status::invalid_argument(
        fmt::format("raft {}: cannot transfer leadership to {}: not a voter", id().str(), to.str()));
  }
  if (transfer_target_ == to) return Status::ok();
  transfer_target_ = to;
  election_elapsed_ = 0;  // the transfer has one election timeout to finish
  const Progress* p = tracker_.find(to);
  if (p->match() == log_.last_index()) {
    send_timeout_now(to);
  } else {
    send_append(to, true);
  }
  return Status::ok();
}

}  // namespace nodenomad
