// Migration planning: the deterministic core of the MigrationEngine that
// decides *which* replicas move *where* (docs/migration.md, "Planning").
//
// Both planners are pure functions of a ClusterMetadata value and the limits:
// no thread, clock, random source or I/O, and no unordered container whose
// order leaks out. The same input gives the same plan on every node, so a new
// metadata leader that re-plans reaches the plan its predecessor made.
//
// Thread safety: the functions hold no state; they may run concurrently on
// any threads as long as the metadata they read is not mutated meanwhile (a
// MetadataStateMachine::current() snapshot never is).
//
// A plan is advice, not a lock: every move carries the epoch of its shard as
// planned, and executing it is a compare-and-set on that epoch
// (metadata::UpdateShardPlacement), so a plan made from a stale view is
// refused with kVersionMismatch and simply re-planned.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "nodenomad/sharding/cluster_metadata.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// One replica of one shard, from `source` (a voter now) to `target` (not a
// member of the shard's group now). Executed as add-before-remove: the
// target joins as a learner, is promoted, and only then the source leaves,
// so the shard never has fewer voters than before the move.
struct MigrationMove {
  ShardId shard;
  NodeId source;
  NodeId target;
  // The shard's epoch when the plan was made; the first placement update of
  // the move is a compare-and-set on it.
  Epoch expected_epoch;

  bool operator==(const MigrationMove&) const = default;
};

// Moves ordered by shard id, at most one per shard.
struct MigrationPlan {
  std::vector<MigrationMove> moves;

  bool empty() const { return moves.empty(); }
  std::size_t size() const { return moves.size(); }
  // One line for logs and tests: "2 moves: 3@1 node-1->node-4, 7@2 node-1->node-4".
  std::string describe() const;

  bool operator==(const MigrationPlan&) const = default;
};

struct PlanLimits {
  // Shards (voters plus learners) a node may host, counting what it hosts
  // now plus what the plan adds; 0 = unlimited.
  std::uint32_t max_shards_per_node = 0;
  // Moves in one plan; 0 = unlimited. create_migration_plan refuses a
  // request for more; plan_rebalance keeps the first max_moves by shard id.
  std::uint32_t max_moves = 0;
};

// Validates an operator's request to move `shards` from `source` to `target`
// and returns one move per shard, in the order given.
//
// Refusals, each kInvalidArgument whose message names the shard or node and
// the rule (e.g. "shard 7: node-4 already holds a replica"):
//   - no shard given, or more than limits.max_moves;
//   - source and target are the same node;
//   - target is not a member, or is leaving (draining);
//   - a shard does not exist, or is listed twice;
//   - source is not a voter of the shard;
//   - target is already a voter or a learner of the shard;
//   - target would host more than limits.max_shards_per_node shards.
// kUnavailable when the metadata is not initialized (no shard yet).
Result<MigrationPlan> create_migration_plan(const ClusterMetadata& metadata,
                                            const std::vector<ShardId>& shards,
                                            const NodeId& source, const NodeId& target,
                                            const PlanLimits& limits);

// The desired placement of shard s: ConsistentHashRing (default options,
// every kActive member with weight 1).get_replica_nodes("shard-<s>",
// min(R, active members)) -- ShardMap::initial's rule over the active
// members. Leaving members are not on the ring, so they are drained.
// kUnavailable when the metadata is not initialized or has no active member.
Result<std::vector<std::vector<NodeId>>> desired_placement(const ClusterMetadata& metadata);

// The moves that bring the actual placement (the ShardMap's voters) towards
// the desired one, at most one per shard per plan:
//   - a shard with a learner has a move in flight and is skipped;
//   - source: a voter not in the desired set, a leaving member first, then
//     in the order of the shard's replica list;
//   - target: the first node of the desired set (ring order) that is not a
//     voter and has room under limits.max_shards_per_node;
//   - a shard with nothing to replace (voters already desired, or only a
//     voter count to grow or shrink) gets no move;
//   - ordered by shard id and cut at limits.max_moves.
// Every move it returns is one create_migration_plan would accept. Shards
// needing two replacements get one now and the other from the next plan.
// Errors as desired_placement().
Result<MigrationPlan> plan_rebalance(const ClusterMetadata& metadata, const PlanLimits& limits);

}  // namespace nodenomad
