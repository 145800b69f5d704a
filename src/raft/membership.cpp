// Membership: configuration changes take effect when their entry commits
// (on every replica, in log order), learners, joint consensus with automatic
// leave, and a leader that removes itself.
#include <fmt/format.h>

#include "nodenomad/logging.hpp"
#include "raft/raft_core.hpp"

namespace nodenomad {

Status RaftCore::check_conf_change_allowed() const {
  if (role_ != RaftRole::kLeader) {
    return Status::not_leader(fmt::format("raft {}: not the leader; leader hint: {}", id().str(),
                                          leader_.str()));
  }
  if (!transfer_target_.empty()) {
    return Status::busy(fmt::format("raft {}: leadership is moving to {}", id().str(),
                                    transfer_target_.str()));
  }
  if (pending_conf_index_ > log_.committed()) {
    return Status::busy(fmt::format(
        "raft {}: entry {} (a configuration change or the leader's first entry) is not "
        "committed yet",
        id().str(), pending_conf_index_.value()));
  }
  return Status::ok();
}

Result<ProposeResult> RaftCore::propose_conf_change(const ConfChange& change) {
  NN_RETURN_IF_ERROR(check_conf_change_allowed());
  // Checked against the configuration it will apply to: nothing else is
  // pending, so every replica applies it to this same configuration.
  NN_RETURN_IF_ERROR(apply_conf_change(tracker_.conf(), change).status());
  NN_ASSIGN_OR_RETURN(ProposeResult result,
                      append_local(EntryType::kConfChange, encode_conf_change(change)));
  pending_conf_index_ = result.index;
  return result;
}

void RaftCore::apply_committed_conf_changes() {
  // At most one change is pending at a time (plus an automatic leave), so
  // this loop is short.
  while (std::optional<LogIndex> index = log_.next_conf_entry(log_.committed())) {
    log_.pop_conf_entry();
    Result<std::vector<Entry>> entry = log_.entries(*index, index->next(), 1);
    NN_ASSERT(entry.is_ok() && entry->size() == 1, "committed conf change ", *index,
              " unreadable: ", entry.status().to_string());
    Result<ConfChange> change = decode_conf_change(entry->front().data);
    Result<ConfState> next =
        change.is_ok() ? apply_conf_change(tracker_.conf(), *change) : Result<ConfState>(change.status());
    if (!next.is_ok()) {
      // Every replica reaches the same verdict on the same log, so skipping
      // the entry keeps them in agreement.
      nodenomad::log(LogLevel::kWarn, "raft",
          fmt::format("{}: committed conf change {} ignored: {}", id().str(), index->value(),
                      next.status().to_string()));
      continue;
    }
    switch_conf(*next, *index);
  }
}

void RaftCore::switch_conf(const ConfState& conf, LogIndex index) {
  tracker_.set_conf(conf, log_.last_index().next());
  conf_history_.emplace_back(index, conf);
  for (auto it = snapshot_sends_.begin(); it != snapshot_sends_.end();) {
    it = tracker_.is_member(it->first) ? std::next(it) : snapshot_sends_.erase(it);
  }
  if (role_ != RaftRole::kLeader) return;
  if (!tracker_.is_voter(id())) {
    step_down_after_removal();
    return;
  }
  // New members need the log; a smaller quorum may commit at once.
  broadcast_pending_ = true;
  maybe_commit();
}

void RaftCore::step_down_after_removal() {
  // Hand the group to a remaining voter that holds this leader's whole log,
  // so it need not wait for an election timeout; then stop leading.
  NodeId best;
  NodeId most;
  LogIndex most_match;
  for (const NodeId& voter : tracker_.all_voters()) {
    const Progress* p = tracker_.find(voter);
    if (p == nullptr) continue;
    if (p->match() == log_.last_index()) {
      best = voter;
      break;
    }
    if (most.empty() || p->match() > most_match) {
      most = voter;
      most_match = p->match();
    }
  }
  if (best.empty()) {
    // Nobody holds the whole log yet. Stepping down now could leave the
    // group without a leader for good: the voters may not know that the
    // change committed (so under the joint configuration they still need
    // this node's vote), and this node's longer log refuses theirs. Lead
    // on, taking no proposals, until the most up-to-date voter caught up.
    if (!most.empty() && transfer_target_.empty()) (void)transfer_leadership(most);
    return;
  }
  nodenomad::log(LogLevel::kInfo, "raft",
      fmt::format("{}: removed from the voters; stepping down at term {}, handing over to {}",
                  id().str(), term_.value(), best.str()));
  send_timeout_now(best);
  become_follower(term_, NodeId());
}

void RaftCore::maybe_leave_joint() {
  const ConfState& conf = tracker_.conf();
  if (!is_joint(conf) || !conf.auto_leave || pending_conf_index_ > log_.committed() ||
      !transfer_target_.empty()) {
    return;
  }
  const Result<ProposeResult> leave = append_local(EntryType::kConfChange, encode_conf_change({}));
  NN_ASSERT(leave.is_ok(), "leaving the joint configuration: ", leave.status().to_string());
  pending_conf_index_ = leave->index;
}

ConfState RaftCore::conf_at(LogIndex index) const {
  NN_ASSERT(!conf_history_.empty() && conf_history_.front().first <= index,
            "configuration at ", index, " is older than the history");
  for (auto it = conf_history_.rbegin(); it != conf_history_.rend(); ++it) {
    if (it->first <= index) return it->second;
  }
  NN_UNREACHABLE("conf history");
  return {};
}

void RaftCore::report_unreachable(const NodeId& peer) {
  if (role_ != RaftRole::kLeader) return;
  Progress* p = tracker_.find(peer);
  if (p != nullptr && p->state() == ProgressState::kReplicate) p->become_probe();
}

}  // namespace nodenomad
