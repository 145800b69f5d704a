// The coordinator's housekeeping of the cluster's membership (see
// migration_coordinator.hpp): the metadata group's configuration follows the
// member list, drained members leave once empty, orphan copies are dropped.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>

#include "node/migration_coordinator.hpp"
#include "node/migration_support.hpp"
#include "node/node_impl.hpp"
#include "nodenomad/logging.hpp"

namespace nodenomad::node {

namespace {

constexpr std::uint64_t kUpkeepIntervalMs = 500;
// Leadership transfers started per sweep (each is one Raft round or two).
constexpr int kLeaderMovesPerSweep = 4;
// A learner this close to the leader's log may be promoted.
constexpr std::uint64_t kPromoteLagEntries = 100;

}  // namespace

void MigrationCoordinator::upkeep(const ClusterMetadata& view, bool migrations_running) {
  const std::uint64_t now = node_.now_ms();
  if (now - last_sweep_ms_ >= node_.options().maintenance_interval_ms) {
    last_sweep_ms_ = now;
    sweep_orphans(view);
  }
  if (upkeep_busy_ || now - last_upkeep_ms_ < kUpkeepIntervalMs) return;
  last_upkeep_ms_ = now;
  GroupReplica& meta = node_.metadata_replica();
  const RaftEngine& engine = meta.engine();
  const ConfState conf = engine.conf_state();
  if (is_joint(conf)) return;
  auto usable = [&](const NodeId& id) {
    const Member* m = view.find_member(id);
    return m != nullptr && m->state == MemberState::kActive;
  };
  auto caught_up = [&](const NodeId& id) {
    const auto p = engine.progress(id);
    return p && p->match.value() + kPromoteLagEntries >= engine.last_index().value();
  };
  ConfChange change;
  std::string what;
  // 1. A member that is not in the group at all gets the log as a learner.
  for (const Member& m : view.members()) {
    if (!contains(conf.voters, m.id) && !contains(conf.learners, m.id)) {
      change.changes.push_back({ConfChangeType::kAddLearner, m.id});
      what = fmt::format("adding member {} to the metadata group as a learner", m.id.str());
      break;
    }
  }
  // 2. A voter that is leaving or gone is replaced by a caught-up learner
  //    (or just removed while two voters remain).
  if (change.changes.empty()) {
    for (const NodeId& v : conf.voters) {
      if (usable(v)) continue;
      if (v == node_.options().id) {
        // The leader leaves last: hand the group to another usable voter.
        for (const NodeId& other : conf.voters) {
          if (other != v && usable(other) && caught_up(other)) {
            (void)meta.transfer_leadership(other);
            return;
          }
        }
        break;
      }
      for (const NodeId& l : conf.learners) {
        if (usable(l) && caught_up(l)) {
          change.changes.push_back({ConfChangeType::kAddVoter, l});
          break;
        }
      }
      if (change.changes.empty() && conf.voters.size() <= 2) break;
      change.changes.push_back({ConfChangeType::kRemoveNode, v});
      what = fmt::format("taking {} out of the metadata voters", v.str());
      break;
    }
  }
  // 3. Fewer voters than metadata_replicas: promote a caught-up learner.
  if (change.changes.empty() && conf.voters.size() < node_.options().metadata_replicas) {
    for (const NodeId& l : conf.learners) {
      if (usable(l) && caught_up(l)) {
        change.changes.push_back({ConfChangeType::kAddVoter, l});
        what = fmt::format("promoting {} to a metadata voter", l.str());
        break;
      }
    }
  }
  // 4. A learner that is no longer a member (or leaving and empty) leaves.
  if (change.changes.empty()) {
    for (const NodeId& l : conf.learners) {
      const Member* m = view.find_member(l);
      if (m == nullptr) {
        change.changes.push_back({ConfChangeType::kRemoveNode, l});
        what = fmt::format("taking {} out of the metadata group", l.str());
        break;
      }
    }
  }
  if (!change.changes.empty()) {
    Result<ProposeResult> proposed = meta.propose_conf_change(change);
    if (proposed.is_ok()) {
      nodenomad::log(LogLevel::kInfo, "migration", what);
    }
    return;
  }
  // 5. A drained member that hosts nothing and votes in no group leaves.
  if (migrations_running) return;
  for (const Member& m : view.members()) {
    if (m.state != MemberState::kLeaving || !view.shard_map().shards_on(m.id).empty() ||
        contains(conf.voters, m.id)) {
      continue;
    }
    upkeep_busy_ = true;
    const NodeId id = m.id;
    node_.propose_metadata(metadata::RemoveMember{id}, [this, id](Result<MetadataResult> r) {
      upkeep_busy_ = false;
      if (r.is_ok() && r->ok()) {
        nodenomad::log(LogLevel::kInfo, "migration",
                       fmt::format("{} was drained and has left the cluster", id.str()));
      }
    });
    return;
  }
}

// Asks every member which shard replicas it holds, and has it drop those no
// placement names (a source that was down at Cleanup, a rolled-back target
// that did not answer). The node checks its own view before dropping.
void MigrationCoordinator::sweep_orphans(const ClusterMetadata& view) {
  struct Gather {
    std::map<NodeId, std::vector<ReplicaStats>> stats;
    std::size_t waiting = 0;
  };
  auto gather = std::make_shared<Gather>();
  auto handle = [this, gather](const NodeId& id, std::vector<ReplicaStats> stats) {
    const std::shared_ptr<const ClusterMetadata> now = node_.view();
    for (const ReplicaStats& r : stats) {
      if (r.shard.value() >= now->shard_count()) continue;
      const ShardPlacement& p = now->shard_map().placement(r.shard);
      if (p.hosts(id)) continue;
      RpcRequest drop;
      drop.op = RpcOp::kDropShard;
      drop.key = std::to_string(r.shard.value());
      drop.if_version = p.epoch.value();
      nodenomad::log(LogLevel::kInfo, "migration",
                     fmt::format("{} holds an orphan copy of shard {}; dropping it", id.str(),
                                 r.shard.value()));
      node_.call_admin(id, drop, [](Result<RpcResponse>) {});
    }
    gather->stats[id] = std::move(stats);
    if (--gather->waiting == 0) balance_leaders(gather->stats);
  };
  gather->waiting = view.members().size();
  for (const Member& m : view.members()) {
    const NodeId id = m.id;
    if (id == node_.options().id) {
      handle(id, node_.local_replica_stats());
      continue;
    }
    RpcRequest rpc;
    rpc.op = RpcOp::kNodeStats;
    node_.call_admin(id, rpc, [handle, id](Result<RpcResponse> r) {
      std::vector<ReplicaStats> stats;
      if (r.is_ok() && r->reply.status.is_ok()) {
        Result<std::vector<ReplicaStats>> decoded = decode_replica_stats(r->reply.value);
        if (decoded.is_ok()) stats = std::move(*decoded);
      }
      handle(id, std::move(stats));
    });
  }
}

// Up to kLeaderMovesPerSweep leadership transfers per sweep, each from a
// shard's leader to one of its voters that leads at least two fewer shards.
// Nodes that did not answer take no part.
void MigrationCoordinator::balance_leaders(const std::map<NodeId, std::vector<ReplicaStats>>& stats) {
  if (!node_.options().balance_leaders || !node_.leads_metadata()) return;
  const std::shared_ptr<const ClusterMetadata> view = node_.view();
  std::map<NodeId, std::size_t> leads;
  std::map<ShardId, NodeId> leader_of;
  for (const auto& [id, replicas] : stats) {
    const Member* m = view->find_member(id);
    if (replicas.empty() || m == nullptr || m->state != MemberState::kActive) continue;
    leads[id] += 0;
    for (const ReplicaStats& r : replicas) {
      if (!r.leader) continue;
      ++leads[id];
      leader_of[r.shard] = id;
    }
  }
  if (leads.size() < 2) return;
  // Each move goes from a leader to one of the shard's replicas leading at
  // least two fewer, the widest gap first (ties: the lowest shard). Every
  // move lowers the sum of squared counts, so the moves stop; looking only
  // at the busiest node could stop early, when none of its shards has a
  // replica on the least loaded one.
  for (int round = 0; round < kLeaderMovesPerSweep; ++round) {
    std::optional<std::pair<ShardId, NodeId>> best;
    std::size_t best_gap = 1;
    for (const auto& [shard, leader] : leader_of) {
      if (shard.value() >= view->shard_count()) continue;
      const std::size_t from = leads[leader];
      for (const NodeId& v : view->shard_map().placement(shard).replicas) {
        auto it = leads.find(v);
        if (it == leads.end() || it->second >= from || from - it->second <= best_gap) continue;
        best = std::make_pair(shard, v);
        best_gap = from - it->second;
      }
    }
    if (!best) return;
    const NodeId from = leader_of[best->first];
    ShardCall call;
    call.op_id = "leader-balance";
    call.shard = best->first;
    call.action = ShardAction::kTransferLeader;
    call.target = best->second;
    nodenomad::log(LogLevel::kInfo, "migration",
                   fmt::format("spreading leaders: shard {} from {} ({} led) to {} ({} led)",
                               call.shard.value(), from.str(), leads[from], call.target.str(),
                               leads[call.target]));
    node_.call_shard_leader(call, [](Result<ShardReport>) {});
    // As if it went through, for the next pick of this sweep.
    --leads[from];
    ++leads[best->second];
    leader_of[best->first] = best->second;
  }
}

}  // namespace nodenomad::node
