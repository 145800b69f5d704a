// ShardMap: where each shard *does* live (actual placement), as opposed to
// the ConsistentHashRing's desired placement. See docs/metadata.md.
//
// Thread safety: none. A ShardMap is a plain value type: copy it to hand it to
// another thread, or share it as part of an immutable ClusterMetadata (the
// MetadataStateMachine publishes one through a shared_ptr<const ...>). Const
// methods may run concurrently with each other.
//
// Contents, per shard s in [0, shard_count):
//   - epoch: the version of s's placement. Every accepted change of the voter
//     or learner set bumps it by one; routers compare epochs to tell which of
//     two views of s is newer.
//   - replicas: the voters of s's Raft group, in the order they were given
//     (replicas[0] is the ring's first choice at bootstrap, the preferred
//     leader).
//   - learners: non-voting members, e.g. a migration target being filled.
//   - leader_hint: a node-local cache of who led s last time we heard; never
//     part of the replicated state (docs/metadata.md, "Leader hints").
//
// Bootstrap contract: initial(nodes, S, R) is a pure function of the *set* of
// node ids, S and R: every node computes it on its own at cluster creation
// and they must agree. Shard s gets
//   ConsistentHashRing (default options, every node weight 1)
//       .get_replica_nodes("shard-<s>", min(R, nodes.size()))
// as its replicas, no learner, no leader hint, epoch 1.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// S is fixed at cluster creation; 65536 bounds the per-shard tables and the
// number of Raft groups a cluster can ever have.
inline constexpr std::uint32_t kMaxShardCount = 65536;
inline constexpr std::uint32_t kDefaultShardCount = 64;
inline constexpr std::uint32_t kDefaultReplicationFactor = 3;
// Raft groups beyond 9 voters gain nothing but slower commits.
inline constexpr std::uint32_t kMaxReplicationFactor = 9;
// Voters plus learners of one shard: room for R voters and the learners of
// concurrent moves. Bounds every decoded replica list.
inline constexpr std::uint32_t kMaxShardMembers = 16;
// The epoch of every shard in a freshly bootstrapped map.
inline constexpr Epoch kInitialShardEpoch{1};

struct ShardPlacement {
  Epoch epoch;
  std::vector<NodeId> replicas;  // voters
  std::vector<NodeId> learners;
  NodeId leader_hint;  // empty: unknown

  bool is_voter(const NodeId& node) const;
  bool is_learner(const NodeId& node) const;
  // A voter or a learner: the node holds (or is receiving) a copy of the shard.
  bool hosts(const NodeId& node) const { return is_voter(node) || is_learner(node); }

  bool operator==(const ShardPlacement&) const = default;
};

// The structural rules of one placement, shared by apply and by decoding:
// replicas non-empty, no empty id, no id twice (within or across the two
// lists), at most kMaxShardMembers ids in all. kInvalidArgument naming the
// rule and the id.
Status check_placement_shape(const std::vector<NodeId>& replicas,
                             const std::vector<NodeId>& learners);

class ShardMap {
 public:
  // A map with no shard (shard_count() == 0): the state of a node that has
  // not learned the cluster's metadata yet.
  ShardMap() = default;

  // The bootstrap placement (see the contract above). kInvalidArgument, naming
  // the limit, when nodes is empty, holds an empty or repeated id, or when
  // shard_count is outside [1, kMaxShardCount] or replication_factor outside
  // [1, kMaxReplicationFactor].
  static Result<ShardMap> initial(const std::vector<NodeId>& nodes, std::uint32_t shard_count,
                                  std::uint32_t replication_factor);

  // A map from explicit placements (one per shard, in shard order), as a
  // decoder rebuilds it. kInvalidArgument when a placement breaks
  // check_placement_shape(), an epoch is 0, a leader hint is not one of its
  // shard's voters, or the counts are out of range.
  static Result<ShardMap> from_placements(std::uint32_t replication_factor,
                                          std::vector<ShardPlacement> placements);

  std::uint32_t shard_count() const { return static_cast<std::uint32_t>(placements_.size()); }
  // The R the cluster was created with: the target voter count per shard
  // (a shard has fewer while the cluster is smaller than R, and may have
  // more for a moment during a move).
  std::uint32_t replication_factor() const { return replication_factor_; }
  bool has_shard(ShardId shard) const { return shard.value() < placements_.size(); }

  // shard_for_key(key, shard_count()) of key_to_shard.hpp.
  // Precondition: shard_count() > 0.
  ShardId shard_for_key(std::string_view key) const;
  // Precondition: has_shard(shard); callers check ids that come from input.
  const ShardPlacement& placement(ShardId shard) const;
  const std::vector<ShardPlacement>& placements() const { return placements_; }
  // Every shard `node` hosts as a voter or a learner, ascending. O(shards).
  std::vector<ShardId> shards_on(const NodeId& node) const;

  // Compare-and-set of one shard's voters and learners: refused with
  // kVersionMismatch (naming both epochs) unless the shard is at
  // `expected_epoch`; kInvalidArgument for an unknown shard or a placement
  // that breaks check_placement_shape(). On success the epoch becomes
  // expected_epoch + 1 and the leader hint is cleared (it named a member of
  // the old group). On error nothing changes.
  Status replace_placement(ShardId shard, Epoch expected_epoch, std::vector<NodeId> replicas,
                           std::vector<NodeId> learners);

  // Records who leads `shard` as far as this node knows (a routing cache;
  // never replicated). kInvalidArgument for an unknown shard or a leader
  // that is not one of its voters; an empty leader clears the hint.
  Status set_leader_hint(ShardId shard, const NodeId& leader);

  // One line for logs and tests, e.g.
  //   "64 shards R=3 | node-1:64 node-2:64 node-3:64 | 0@1[node-2 node-1 node-3] ..."
  // Per-node replica counts first (learners counted with a '+'), then at most
  // the first 16 shards as <shard>@<epoch>[voters] +[learners] with '*' on
  // the hinted leader.
  std::string describe() const;

  bool operator==(const ShardMap&) const = default;

 private:
  std::uint32_t replication_factor_ = 0;
  std::vector<ShardPlacement> placements_;  // index = shard id
};

}  // namespace nodenomad
