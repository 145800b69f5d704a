// ProgressTracker: the group's configuration as the engine applies it, the
// leader's Progress per member, and the votes of an election. Quorums are
// counted over the joint configuration: a decision needs a majority of the
// incoming voters and, while joint, of the outgoing voters too.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "nodenomad/log_store.hpp"
#include "raft/progress.hpp"

namespace nodenomad {

enum class VoteResult : std::uint8_t { kPending, kLost, kWon };

class ProgressTracker {
 public:
  explicit ProgressTracker(const Progress::Window& window) : window_(window) {}

  const ConfState& conf() const { return conf_; }
  // Switches to `conf`: members that are new get a Progress probing from
  // `next`, members that left lose theirs.
  void set_conf(const ConfState& conf, LogIndex next);

  bool is_voter(const NodeId& id) const;
  bool is_member(const NodeId& id) const;
  bool is_learner(const NodeId& id) const;
  // Every voter, incoming and outgoing, once.
  std::vector<NodeId> all_voters() const;

  std::map<NodeId, Progress>& progress() { return progress_; }
  const std::map<NodeId, Progress>& progress() const { return progress_; }
  Progress* find(const NodeId& id);
  const Progress* find(const NodeId& id) const;
  // Fresh progress for every member (a new leader's view), probing from `next`.
  void reset_progress(LogIndex next);

  void reset_votes() { votes_.clear(); }
  void record_vote(const NodeId& id, bool granted);
  VoteResult tally() const;

  // The highest index a quorum has matched.
  LogIndex committed_index() const;
  // The highest heartbeat round a quorum has acknowledged.
  std::uint64_t quorum_round() const;
  // Whether a quorum was active since the last check (the caller marks
  // itself active first).
  bool quorum_active() const;

 private:
  // The largest value a majority of `voters` reach; max for no voters.
  std::uint64_t majority_value(const std::vector<NodeId>& voters,
                               const std::function<std::uint64_t(const Progress&)>& value) const;
  std::uint64_t joint_value(const std::function<std::uint64_t(const Progress&)>& value) const;
  VoteResult tally_of(const std::vector<NodeId>& voters) const;
  Progress make_progress(LogIndex next, bool learner) const;

  Progress::Window window_;
  ConfState conf_;
  std::map<NodeId, Progress> progress_;  // every member; ordered for determinism
  std::map<NodeId, bool> votes_;
};

}  // namespace nodenomad
