#include "raft/tracker.hpp"

#include <algorithm>
#include <limits>

namespace nodenomad {

namespace {

bool contains(const std::vector<NodeId>& set, const NodeId& id) {
  return std::find(set.begin(), set.end(), id) != set.end();
}

}  // namespace

Progress ProgressTracker::make_progress(LogIndex next, bool learner) const {
  return Progress(next, window_, learner);
}

void ProgressTracker::set_conf(const ConfState& conf, LogIndex next) {
  conf_ = conf;
  std::map<NodeId, Progress> kept;
  const auto keep = [&](const NodeId& id, bool learner) {
    auto it = progress_.find(id);
    Progress p = it != progress_.end() ? it->second : make_progress(next, learner);
    p.set_learner(learner);
    kept.insert_or_assign(id, p);
  };
  for (const NodeId& id : conf.voters) keep(id, false);
  for (const NodeId& id : conf.voters_outgoing) keep(id, false);
  for (const NodeId& id : conf.learners) keep(id, true);
  for (const NodeId& id : conf.learners_next) {
    if (!kept.contains(id)) keep(id, true);
  }
  progress_ = std::move(kept);
}

bool ProgressTracker::is_voter(const NodeId& id) const {
  return contains(conf_.voters, id) || contains(conf_.voters_outgoing, id);
}

bool ProgressTracker::is_learner(const NodeId& id) const {
  return !is_voter(id) && (contains(conf_.learners, id) || contains(conf_.learners_next, id));
}

bool ProgressTracker::is_member(const NodeId& id) const { return progress_.contains(id); }

std::vector<NodeId> ProgressTracker::all_voters() const {
  std::vector<NodeId> out = conf_.voters;
  for (const NodeId& id : conf_.voters_outgoing) {
    if (!contains(out, id)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

Progress* ProgressTracker::find(const NodeId& id) {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

const Progress* ProgressTracker::find(const NodeId& id) const {
  auto it = progress_.find(id);
  return it == progress_.end() ? nullptr : &it->second;
}

void ProgressTracker::reset_progress(LogIndex next) {
  for (auto& [id, p] : progress_) p = make_progress(next, p.learner());
}

void ProgressTracker::record_vote(const NodeId& id, bool granted) {
  // The first answer of a voter counts; a later duplicate cannot flip it.
  votes_.try_emplace(id, granted);
}

VoteResult ProgressTracker::tally_of(const std::vector<NodeId>& voters) const {
  if (voters.empty()) return VoteResult::kWon;
  std::size_t granted = 0;
  std::size_t missing = 0;
  for (const NodeId& id : voters) {
    auto it = votes_.find(id);
    if (it == votes_.end()) {
      ++missing;
    } else if (it->second) {
      ++granted;
    }
  }
  const std::size_t quorum = voters.size() / 2 + 1;
  if (granted >= quorum) return VoteResult::kWon;
  if (granted + missing >= quorum) return VoteResult::kPending;
  return VoteResult::kLost;
}

VoteResult ProgressTracker::tally() const {
  const VoteResult in = tally_of(conf_.voters);
  const VoteResult out = tally_of(conf_.voters_outgoing);
  if (in == VoteResult::kLost || out == VoteResult::kLost) return VoteResult::kLost;
  if (in == VoteResult::kWon && out == VoteResult::kWon) return VoteResult::kWon;
  return VoteResult::kPending;
}

std::uint64_t ProgressTracker::majority_value(
    const std::vector<NodeId>& voters,
    const std::function<std::uint64_t(const Progress&)>& value) const {
  if (voters.empty()) return std::numeric_limits<std::uint64_t>::max();
  std::vector<std::uint64_t> values;
  values.reserve(voters.size());
  for (const NodeId& id : voters) {
    const Progress* p = find(id);
    values.push_back(p == nullptr ? 0 : value(*p));
  }
  std::sort(values.begin(), values.end(), std::greater<>());
  return values[voters.size() / 2];
}

std::uint64_t ProgressTracker::joint_value(
    const std::function<std::uint64_t(const Progress&)>& value) const {
  return std::min(majority_value(conf_.voters, value),
                  majority_value(conf_.voters_outgoing, value));
}

LogIndex ProgressTracker::committed_index() const {
  const std::uint64_t v = joint_value([](const Progress& p) { return p.match().value(); });
  return LogIndex(v == std::numeric_limits<std::uint64_t>::max() ? 0 : v);
}

std::uint64_t ProgressTracker::quorum_round() const {
  const std::uint64_t v = joint_value([](const Progress& p) { return p.acked_round(); });
  return v == std::numeric_limits<std::uint64_t>::max() ? 0 : v;
}

bool ProgressTracker::quorum_active() const {
  const std::uint64_t v = joint_value([](const Progress& p) -> std::uint64_t {
    return p.recent_active() ? 1 : 0;
  });
  return v >= 1;
}

}  // namespace nodenomad
