#include "nodenomad/migration/migration_plan.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <utility>

#include "nodenomad/assert.hpp"
#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/sharding/shard_map.hpp"

namespace nodenomad {

namespace {

bool contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

Status check_initialized(const ClusterMetadata& metadata) {
  if (!metadata.initialized()) {
    return Status::unavailable("the cluster metadata is not initialized yet; nothing to plan");
  }
  return Status::ok();
}

// The rules on the request as a whole: they do not depend on a shard.
Status check_request(const ClusterMetadata& metadata, std::size_t shard_total,
                     const NodeId& source, const NodeId& target, const PlanLimits& limits) {
  if (shard_total == 0) return Status::invalid_argument("no shard to move was given");
  if (limits.max_moves != 0 && shard_total > limits.max_moves) {
    return Status::invalid_argument(fmt::format(
        "the request moves {} shards; a plan holds at most {} (max_moves)", shard_total,
        limits.max_moves));
  }
  if (source == target) {
    return Status::invalid_argument(
        fmt::format("source and target are both {}; a move needs two nodes", source.str()));
  }
  const Member* member = metadata.find_member(target);
  if (member == nullptr) {
    return Status::invalid_argument(
        fmt::format("target {} is not a member of the cluster", target.str()));
  }
  if (member->state != MemberState::kActive) {
    return Status::invalid_argument(fmt::format(
        "target {} is {}; a draining member receives no new replica", target.str(),
        member_state_name(member->state)));
  }
  return Status::ok();
}

// The per-shard rules, shared by both planners: a move of `shard` from
// `source` to `target` keeps the shard's group well formed.
Status check_shard_move(const ShardMap& map, ShardId shard, const NodeId& source,
                        const NodeId& target) {
  if (!map.has_shard(shard)) {
    return Status::invalid_argument(fmt::format(
        "shard {} does not exist; the cluster has shards 0 to {}", shard.value(),
        map.shard_count() - 1));
  }
  const ShardPlacement& placement = map.placement(shard);
  if (!placement.is_voter(source)) {
    return Status::invalid_argument(fmt::format(
        "shard {}: {} does not hold a replica (voter){}", shard.value(), source.str(),
        placement.is_learner(source) ? "; it is only a learner" : ""));
  }
  if (placement.is_voter(target)) {
    return Status::invalid_argument(
        fmt::format("shard {}: {} already holds a replica", shard.value(), target.str()));
  }
  if (placement.is_learner(target)) {
    return Status::invalid_argument(fmt::format(
        "shard {}: {} is already a learner (a move onto it is in progress)", shard.value(),
        target.str()));
  }
  return Status::ok();
}

bool has_room(std::uint32_t hosted, const PlanLimits& limits) {
  return limits.max_shards_per_node == 0 || hosted < limits.max_shards_per_node;
}

// Shards (voters and learners) each node hosts now. O(shards * members of one).
std::map<NodeId, std::uint32_t> hosted_counts(const ShardMap& map) {
  std::map<NodeId, std::uint32_t> counts;
  for (const ShardPlacement& placement : map.placements()) {
    for (const NodeId& id : placement.replicas) ++counts[id];
    for (const NodeId& id : placement.learners) ++counts[id];
  }
  return counts;
}

// The voter that should leave shard `placement`: not desired, a leaving
// member first, then in replica-list order. Empty: none.
NodeId pick_source(const ClusterMetadata& metadata, const ShardPlacement& placement,
                   const std::vector<NodeId>& desired) {
  NodeId first_undesired;
  for (const NodeId& voter : placement.replicas) {
    if (contains(desired, voter)) continue;
    const Member* member = metadata.find_member(voter);
    if (member == nullptr || member->state == MemberState::kLeaving) return voter;
    if (first_undesired.empty()) first_undesired = voter;
  }
  return first_undesired;
}

// The desired node that should join: not a voter, in ring order, with room.
NodeId pick_target(const ShardPlacement& placement, const std::vector<NodeId>& desired,
                   const std::map<NodeId, std::uint32_t>& hosted, const PlanLimits& limits) {
  for (const NodeId& candidate : desired) {
    if (placement.hosts(candidate)) continue;
    const auto it = hosted.find(candidate);
    if (has_room(it == hosted.end() ? 0 : it->second, limits)) return candidate;
  }
  return NodeId();
}

}  // namespace

std::string MigrationPlan::describe() const {
  std::string out = fmt::format("{} move{}", moves.size(), moves.size() == 1 ? "" : "s");
  const char* separator = ": ";
  for (const MigrationMove& move : moves) {
    out += fmt::format("{}{}@{} {}->{}", separator, move.shard.value(),
                       move.expected_epoch.value(), move.source.str(), move.target.str());
    separator = ", ";
  }
  return out;
}

Result<MigrationPlan> create_migration_plan(const ClusterMetadata& metadata,
                                            const std::vector<ShardId>& shards,
                                            const NodeId& source, const NodeId& target,
                                            const PlanLimits& limits) {
  NN_RETURN_IF_ERROR(check_initialized(metadata));
  NN_RETURN_IF_ERROR(check_request(metadata, shards.size(), source, target, limits));
  const ShardMap& map = metadata.shard_map();
  std::uint32_t hosted = static_cast<std::uint32_t>(map.shards_on(target).size());
  std::vector<bool> listed(map.shard_count(), false);
  MigrationPlan plan;
  plan.moves.reserve(std::min<std::size_t>(shards.size(), map.shard_count()));
  for (const ShardId shard : shards) {
    NN_RETURN_IF_ERROR(check_shard_move(map, shard, source, target));
    if (listed[shard.value()]) {
      return Status::invalid_argument(
          fmt::format("shard {} is listed twice; a plan moves a shard once", shard.value()));
    }
    listed[shard.value()] = true;
    if (!has_room(hosted, limits)) {
      return Status::invalid_argument(fmt::format(
          "shard {}: {} would host {} shards, beyond max_shards_per_node {}", shard.value(),
          target.str(), hosted + 1, limits.max_shards_per_node));
    }
    ++hosted;
    plan.moves.push_back(MigrationMove{shard, source, target, map.placement(shard).epoch});
  }
  return plan;
}

Result<std::vector<std::vector<NodeId>>> desired_placement(const ClusterMetadata& metadata) {
  NN_RETURN_IF_ERROR(check_initialized(metadata));
  ConsistentHashRing ring;
  for (const Member& member : metadata.members()) {
    if (member.state != MemberState::kActive) continue;
    const Status added = ring.add_node(member.id);
    if (!added.is_ok()) return added.with_context("desired placement");
  }
  if (ring.node_count() == 0) {
    return Status::unavailable("no active member: there is nowhere to place the shards");
  }
  const std::size_t voters =
      std::min<std::size_t>(metadata.replication_factor(), ring.node_count());
  std::vector<std::vector<NodeId>> desired;
  desired.reserve(metadata.shard_count());
  for (std::uint32_t s = 0; s < metadata.shard_count(); ++s) {
    desired.push_back(ring.get_replica_nodes(fmt::format("shard-{}", s), voters));
    NN_ASSERT(desired.back().size() == voters, "the ring gave ", desired.back().size(), " of ",
              voters, " replicas for shard ", s);
  }
  return desired;
}

Result<MigrationPlan> plan_rebalance(const ClusterMetadata& metadata, const PlanLimits& limits) {
  NN_ASSIGN_OR_RETURN(std::vector<std::vector<NodeId>> desired, desired_placement(metadata));
  const ShardMap& map = metadata.shard_map();
  std::map<NodeId, std::uint32_t> hosted = hosted_counts(map);
  MigrationPlan plan;
  for (std::uint32_t s = 0; s < map.shard_count(); ++s) {
    if (limits.max_moves != 0 && plan.moves.size() >= limits.max_moves) break;
    const ShardId shard(s);
    const ShardPlacement& placement = map.placement(shard);
    if (!placement.learners.empty()) continue;  // a move is in flight
    const NodeId source = pick_source(metadata, placement, desired[s]);
    if (source.empty()) continue;
    const NodeId target = pick_target(placement, desired[s], hosted, limits);
    if (target.empty()) continue;
    NN_ASSERT(check_shard_move(map, shard, source, target).is_ok(), "rebalance planned ",
              "an invalid move of shard ", s, " from ", source, " to ", target);
    ++hosted[target];
    plan.moves.push_back(MigrationMove{shard, source, target, placement.epoch});
  }
  return plan;
}

}  // namespace nodenomad
