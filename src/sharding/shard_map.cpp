#include "nodenomad/sharding/shard_map.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <utility>

#include "nodenomad/assert.hpp"
#include "nodenomad/sharding/consistent_hash_ring.hpp"
#include "nodenomad/sharding/key_to_shard.hpp"

namespace nodenomad {

namespace {

// describe() lists this many shards; the per-node counts cover the rest.
constexpr std::uint32_t kDescribeShardLimit = 16;

bool contains(const std::vector<NodeId>& ids, const NodeId& id) {
  return std::find(ids.begin(), ids.end(), id) != ids.end();
}

Status check_shard_count(std::uint32_t shard_count) {
  if (shard_count < 1 || shard_count > kMaxShardCount) {
    return Status::invalid_argument(fmt::format(
        "shard_count {} is out of range; accepted: 1 to {} (kMaxShardCount)", shard_count,
        kMaxShardCount));
  }
  return Status::ok();
}

Status check_replication_factor(std::uint32_t replication_factor) {
  if (replication_factor < 1 || replication_factor > kMaxReplicationFactor) {
    return Status::invalid_argument(fmt::format(
        "replication_factor {} is out of range; accepted: 1 to {} (kMaxReplicationFactor)",
        replication_factor, kMaxReplicationFactor));
  }
  return Status::ok();
}

std::string join_ids(const std::vector<NodeId>& ids, const NodeId& starred) {
  std::string out;
  for (const NodeId& id : ids) {
    if (!out.empty()) out.push_back(' ');
    if (!starred.empty() && id == starred) out.push_back('*');
    out += id.str();
  }
  return out;
}

}  // namespace

bool ShardPlacement::is_voter(const NodeId& node) const { return contains(replicas, node); }

bool ShardPlacement::is_learner(const NodeId& node) const { return contains(learners, node); }

Status check_placement_shape(const std::vector<NodeId>& replicas,
                             const std::vector<NodeId>& learners) {
  if (replicas.empty()) {
    return Status::invalid_argument("a shard needs at least one replica (voter); none was given");
  }
  const std::size_t total = replicas.size() + learners.size();
  if (total > kMaxShardMembers) {
    return Status::invalid_argument(fmt::format(
        "{} replicas and {} learners make {} members; a shard has at most {} (kMaxShardMembers)",
        replicas.size(), learners.size(), total, kMaxShardMembers));
  }
  // At most kMaxShardMembers ids: the quadratic scan is at most 120 compares.
  std::vector<NodeId> seen;
  seen.reserve(total);
  for (const std::vector<NodeId>* list : {&replicas, &learners}) {
    for (const NodeId& id : *list) {
      if (id.empty()) return Status::invalid_argument("a replica or learner id is empty");
      if (contains(seen, id)) {
        return Status::invalid_argument(fmt::format(
            "node {} appears twice among the replicas and learners of one shard", id.str()));
      }
      seen.push_back(id);
    }
  }
  return Status::ok();
}

Result<ShardMap> ShardMap::initial(const std::vector<NodeId>& nodes, std::uint32_t shard_count,
                                   std::uint32_t replication_factor) {
  NN_RETURN_IF_ERROR(check_shard_count(shard_count));
  NN_RETURN_IF_ERROR(check_replication_factor(replication_factor));
  if (nodes.empty()) {
    return Status::invalid_argument("ShardMap::initial: the node list is empty; give at least one");
  }
  // The ring orders nodes by id, so insertion order cannot change placement;
  // a repeated id would silently shrink the set, hence the explicit refusal.
  ConsistentHashRing ring;
  for (const NodeId& node : nodes) {
    if (ring.contains(node)) {
      return Status::invalid_argument(
          fmt::format("ShardMap::initial: node {} is listed twice; ids must be distinct", node.str()));
    }
    const Status added = ring.add_node(node);
    if (!added.is_ok()) return added.with_context("ShardMap::initial");
  }
  const std::size_t voters = std::min<std::size_t>(replication_factor, nodes.size());
  ShardMap map;
  map.replication_factor_ = replication_factor;
  map.placements_.reserve(shard_count);
  for (std::uint32_t s = 0; s < shard_count; ++s) {
    ShardPlacement placement;
    placement.epoch = kInitialShardEpoch;
    placement.replicas = ring.get_replica_nodes(fmt::format("shard-{}", s), voters);
    NN_ASSERT(placement.replicas.size() == voters, "the ring gave ", placement.replicas.size(),
              " of ", voters, " replicas for shard ", s);
    map.placements_.push_back(std::move(placement));
  }
  return map;
}

Result<ShardMap> ShardMap::from_placements(std::uint32_t replication_factor,
                                           std::vector<ShardPlacement> placements) {
  NN_RETURN_IF_ERROR(check_replication_factor(replication_factor));
  if (placements.size() > kMaxShardCount) {
    return Status::invalid_argument(fmt::format("{} placements exceed kMaxShardCount ({})",
                                                placements.size(), kMaxShardCount));
  }
  NN_RETURN_IF_ERROR(check_shard_count(static_cast<std::uint32_t>(placements.size())));
  for (std::size_t s = 0; s < placements.size(); ++s) {
    const ShardPlacement& placement = placements[s];
    const Status shape = check_placement_shape(placement.replicas, placement.learners);
    if (!shape.is_ok()) return shape.with_context(fmt::format("shard {}", s));
    if (placement.epoch.value() == 0) {
      return Status::invalid_argument(fmt::format("shard {} has epoch 0; epochs start at 1", s));
    }
    if (!placement.leader_hint.empty() && !placement.is_voter(placement.leader_hint)) {
      return Status::invalid_argument(fmt::format("shard {}: leader hint {} is not a voter", s,
                                                  placement.leader_hint.str()));
    }
  }
  ShardMap map;
  map.replication_factor_ = replication_factor;
  map.placements_ = std::move(placements);
  return map;
}

ShardId ShardMap::shard_for_key(std::string_view key) const {
  NN_ASSERT(!placements_.empty(), "shard_for_key on a ShardMap with no shard");
  return nodenomad::shard_for_key(key, shard_count());
}

const ShardPlacement& ShardMap::placement(ShardId shard) const {
  NN_ASSERT(has_shard(shard), "placement(", shard, ") of a map with ", placements_.size(),
            " shards");
  return placements_[shard.value()];
}

std::vector<ShardId> ShardMap::shards_on(const NodeId& node) const {
  std::vector<ShardId> shards;
  for (std::size_t s = 0; s < placements_.size(); ++s) {
    if (placements_[s].hosts(node)) shards.emplace_back(s);
  }
  return shards;
}

Status ShardMap::replace_placement(ShardId shard, Epoch expected_epoch,
                                   std::vector<NodeId> replicas, std::vector<NodeId> learners) {
  if (!has_shard(shard)) {
    return Status::invalid_argument(fmt::format("shard {} does not exist; the map has {} (0 to {})",
                                                shard.value(), placements_.size(),
                                                placements_.empty() ? 0 : placements_.size() - 1));
  }
  ShardPlacement& current = placements_[shard.value()];
  if (current.epoch != expected_epoch) {
    return Status::version_mismatch(
        fmt::format("shard {} is at epoch {}, but the update expected epoch {}", shard.value(),
                    current.epoch.value(), expected_epoch.value()));
  }
  const Status shape = check_placement_shape(replicas, learners);
  if (!shape.is_ok()) return shape.with_context(fmt::format("shard {}", shard.value()));
  current.replicas = std::move(replicas);
  current.learners = std::move(learners);
  current.leader_hint = NodeId();
  current.epoch = current.epoch.next();
  return Status::ok();
}

Status ShardMap::set_leader_hint(ShardId shard, const NodeId& leader) {
  if (!has_shard(shard)) {
    return Status::invalid_argument(
        fmt::format("shard {} does not exist; the map has {}", shard.value(), placements_.size()));
  }
  ShardPlacement& placement = placements_[shard.value()];
  if (!leader.empty() && !placement.is_voter(leader)) {
    return Status::invalid_argument(fmt::format("node {} is not a voter of shard {} at epoch {}",
                                                leader.str(), shard.value(),
                                                placement.epoch.value()));
  }
  placement.leader_hint = leader;
  return Status::ok();
}

std::string ShardMap::describe() const {
  // Voter and learner counts per node, ordered by id so the text is stable.
  std::map<NodeId, std::pair<std::uint32_t, std::uint32_t>> per_node;
  for (const ShardPlacement& placement : placements_) {
    for (const NodeId& id : placement.replicas) ++per_node[id].first;
    for (const NodeId& id : placement.learners) ++per_node[id].second;
  }
  std::string out =
      fmt::format("{} shards R={} |", placements_.size(), replication_factor_);
  for (const auto& [id, counts] : per_node) {
    out += fmt::format(" {}:{}", id.str(), counts.first);
    if (counts.second > 0) out += fmt::format("+{}", counts.second);
  }
  out += " |";
  const std::size_t listed = std::min<std::size_t>(placements_.size(), kDescribeShardLimit);
  for (std::size_t s = 0; s < listed; ++s) {
    const ShardPlacement& placement = placements_[s];
    out += fmt::format(" {}@{}[{}]", s, placement.epoch.value(),
                       join_ids(placement.replicas, placement.leader_hint));
    if (!placement.learners.empty()) out += fmt::format("+[{}]", join_ids(placement.learners, {}));
  }
  if (listed < placements_.size()) out += fmt::format(" ... ({} more)", placements_.size() - listed);
  return out;
}

}  // namespace nodenomad
