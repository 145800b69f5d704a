// Invariants: Raft's safety properties, checked over a set of engines after
// every step of a test or a simulation (after LogCabin's
// RaftConsensusInvariants).
//
// The checker remembers what it has seen across calls, so it checks
// properties over time, not just over one snapshot of the cluster:
//   - election safety: at most one leader per term, ever;
//   - log matching: two logs that hold an entry with the same index and term
//     hold the same entry there and agree on the term before it (which,
//     by induction, makes the prefixes identical);
//   - leader completeness: an entry known committed at term T is in the log
//     of every leader of a term >= T;
//   - state-machine safety: every node commits (and applies, as reported to
//     record_applied) the same entry at each index;
//   - commit monotonicity: a node's commit index never moves backwards
//     while it runs, and after a restart it is at least the commit it had
//     made durable (nodes are known by id, not by engine object).
//
// Violations answer kFailed with a message naming the nodes, index and
// terms. Thread safety: none; one checker per test.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "nodenomad/raft/raft_engine.hpp"

namespace nodenomad {

class Invariants {
 public:
  // Checks the live engines (crashed nodes are simply absent).
  Status check(std::span<const RaftEngine* const> engines);
  // Records that `node`'s host applied `entry`; checks it is the entry
  // committed at that index and that the node applies in index order.
  Status record_applied(const NodeId& node, const Entry& entry);

  // The host persisted `state` for `node` (LogStore::sync returned).
  void record_persisted(const NodeId& node, const HardState& state);
  // `node` restarted from its LogStore: its commit may fall back to the
  // durable one, never below; it applies again from `applied` (the
  // restarted engine's applied_index()).
  void record_restart(const NodeId& node, LogIndex applied);
  // `node` lost its store on purpose and starts empty (a replica dropped,
  // then created again under the same id): what it held is forgotten.
  void record_wiped(const NodeId& node) { views_.erase(node); }

  // How many entries are known committed (for tests of the checker).
  std::size_t known_committed() const { return committed_.size(); }

 private:
  struct EntryFact {
    Term prev_term;
    std::size_t data_hash = 0;
    EntryType type = EntryType::kNormal;
  };
  struct CommittedFact {
    Term term;
    Term seen_at_term;  // the lowest term of a node seen holding it committed
  };
  struct NodeView {
    std::vector<Term> terms;  // terms[i]: the term last seen at index i
    LogIndex last_commit;
    LogIndex durable_commit;
    LogIndex last_applied;
  };

  Status check_leader(const RaftEngine& engine);
  Status scan_log(const RaftEngine& engine, NodeView& view);
  Status check_fact(const RaftEngine& engine, LogIndex index, Term term);
  Status check_committed(const RaftEngine& engine, NodeView& view);
  Status check_completeness(const RaftEngine& leader, const NodeView& view) const;

  std::map<Term, NodeId> leaders_;
  std::map<std::pair<LogIndex, Term>, EntryFact> facts_;
  std::vector<CommittedFact> committed_;  // committed_[i - 1] for index i
  std::map<NodeId, NodeView> views_;
};

}  // namespace nodenomad
