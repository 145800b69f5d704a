// LeaderHints: which node this node believes leads each shard, learned from
// its own replicas and from peers' answers, so that requests and the
// migration coordinator's calls go to the leader first.
//
// A hint naming this node itself is taken only from its own replica, which
// knows whether it leads. A peer that names us answers from a stale view
// (we gave the shard away, or lost the lead while it did not hear), and
// believing it made the coordinator ask itself, and answer itself with the
// same hint, until the move rolled back — and the rollback then stalled the
// same way (docs/simulation.md, "Findings"). Such a hint is dropped, and
// the caller falls back to the ShardMap's replicas.
//
// Thread safety: none (the node's loop).
#pragma once

#include <map>
#include <utility>

#include "nodenomad/types.hpp"

namespace nodenomad::node {

class LeaderHints {
 public:
  explicit LeaderHints(NodeId self) : self_(std::move(self)) {}

  // What this node's own replica of `shard` says (empty: no leader known).
  void from_replica(ShardId shard, const NodeId& leader) { set(shard, leader); }

  // What a peer's answer says; a hint naming this node is stale news.
  void from_peer(ShardId shard, const NodeId& hint) {
    set(shard, hint == self_ ? NodeId() : hint);
  }

  void forget(ShardId shard) { hints_.erase(shard); }

  // The believed leader, or empty.
  NodeId get(ShardId shard) const {
    auto it = hints_.find(shard);
    return it == hints_.end() ? NodeId() : it->second;
  }

 private:
  void set(ShardId shard, const NodeId& leader) {
    if (leader.empty()) {
      hints_.erase(shard);
    } else {
      hints_[shard] = leader;
    }
  }

  NodeId self_;
  std::map<ShardId, NodeId> hints_;
};

}  // namespace nodenomad::node
