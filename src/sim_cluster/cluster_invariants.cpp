#include "sim_cluster/cluster_invariants.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace nodenomad::sim_cluster {
namespace {

std::string names(const std::vector<NodeId>& ids) {
  std::string out = "[";
  for (const NodeId& id : ids) out += (out.size() > 1 ? " " : "") + id.str();
  return out + "]";
}

std::string describe(const node::MigrationRecord& r) {
  return fmt::format("{} shard {} {}->{} {}{}{}", r.id, r.shard.value(), r.source.str(),
                     r.target.str(), migration_stage_name(r.stage),
                     r.rolling_back ? " rolling back" : "", r.started ? "" : " queued");
}

bool ends_rolled_back(MigrationStage s) {
  return s == MigrationStage::kFailed || s == MigrationStage::kCancelled;
}

// Whether `b`, a later version of the same operation than `a`, may follow it.
std::string order_violation(const node::MigrationRecord& a, const node::MigrationRecord& b) {
  if (migration_stage_terminal(a.stage)) return "it changed after it ended";
  if (b.stage < a.stage) return "its stage went back";
  if (a.rolling_back && !b.rolling_back && !ends_rolled_back(b.stage)) {
    return "a rollback was abandoned";
  }
  if (a.rolling_back && b.stage == MigrationStage::kDone) return "a rollback ended done";
  if (a.started && !b.started) return "it went back to queued";
  if (ends_rolled_back(b.stage) && b.stage != a.stage && a.stage >= MigrationStage::kUpdate) {
    return "it was rolled back after Update";
  }
  return "";
}

}  // namespace

std::uint64_t migration_batch_seq(const std::string& op_id) {
  if (op_id.size() < 2 || op_id[0] != 'm') return 0;
  return std::strtoull(op_id.c_str() + 1, nullptr, 10);
}

std::string ClusterInvariants::observe(std::uint32_t node, std::uint64_t incarnation,
                                       const ClusterMetadata& view) {
  if (!view.initialized()) return "";
  ++views_checked_;
  std::string v = check_placements(node, incarnation, view);
  if (!v.empty()) return v;
  std::vector<node::MigrationRecord> records;
  v = check_records(view, records);
  if (!v.empty()) return v;
  v = check_live_operations(view, records);
  if (!v.empty()) return v;
  return check_done(view, records);
}

std::string ClusterInvariants::check_placements(std::uint32_t node, std::uint64_t incarnation,
                                                const ClusterMetadata& view) {
  NodeEpochs& mine = node_epochs_[node];
  if (mine.incarnation != incarnation) mine = NodeEpochs{incarnation, {}};
  const ShardMap& map = view.shard_map();
  mine.epochs.resize(map.shard_count());
  for (std::uint32_t s = 0; s < map.shard_count(); ++s) {
    const ShardPlacement& p = map.placement(ShardId(s));
    const std::string where = fmt::format("shard {} at epoch {}", s, p.epoch.value());
    if (Status shape = check_placement_shape(p.replicas, p.learners); !shape.is_ok()) {
      return fmt::format("{} is malformed: {}", where, shape.to_string());
    }
    if (p.replicas.size() != replication_factor_) {
      return fmt::format("{} has {} voters {}, not R = {}", where, p.replicas.size(),
                         names(p.replicas), replication_factor_);
    }
    if (p.learners.size() > 1) {
      return fmt::format("{} has {} learners {}: two moves in flight", where, p.learners.size(),
                         names(p.learners));
    }
    if (p.epoch < mine.epochs[s]) {
      return fmt::format("node {}'s view of shard {} went back from epoch {} to {}", node, s,
                         mine.epochs[s].value(), p.epoch.value());
    }
    mine.epochs[s] = p.epoch;
    auto [it, inserted] = owners_.try_emplace({s, p.epoch.value()}, Owners{p.replicas, p.learners});
    if (!inserted && (it->second.replicas != p.replicas || it->second.learners != p.learners)) {
      return fmt::format("two owner sets for {}: {} +{} and {} +{}", where,
                         names(it->second.replicas), names(it->second.learners),
                         names(p.replicas), names(p.learners));
    }
  }
  return "";
}

std::string ClusterInvariants::check_records(const ClusterMetadata& view,
                                             std::vector<node::MigrationRecord>& records) {
  for (const auto& [key, rec] : view.records_in(node::kMigrationNamespace)) {
    const auto bytes_key = std::make_pair(key, rec.version);
    if (auto known = version_bytes_.find(bytes_key); known != version_bytes_.end()) {
      if (known->second != rec.value) {
        return fmt::format("operation {} has two different records at version {}", key,
                           rec.version);
      }
      records.push_back(versions_[key].at(rec.version));
      continue;
    }
    Result<node::MigrationRecord> r = node::decode_migration_record(rec.value);
    if (!r.is_ok()) {
      return fmt::format("operation {}'s record does not decode: {}", key, r.status().to_string());
    }
    if (r->id != key) return fmt::format("the record at key {} names operation {}", key, r->id);
    version_bytes_.emplace(bytes_key, rec.value);
    versions_[key].emplace(rec.version, *r);
    if (std::string v = check_record_order(*r, rec.version); !v.empty()) return v;
    auto& newest = newest_[key];
    if (versions_[key].rbegin()->first == rec.version) newest = *r;
    records.push_back(*r);
    if (on_new_record) on_new_record(*r);
  }
  return "";
}

std::string ClusterInvariants::check_record_order(const node::MigrationRecord& r,
                                                  std::uint64_t version) {
  if (r.rolling_back && r.stage >= MigrationStage::kUpdate && !ends_rolled_back(r.stage)) {
    return fmt::format("operation {} rolls back at or after Update (version {})", describe(r),
                       version);
  }
  const auto& all = versions_.at(r.id);
  auto it = all.find(version);
  if (it != all.begin()) {
    const auto& [prev_version, prev] = *std::prev(it);
    if (std::string why = order_violation(prev, r); !why.empty()) {
      return fmt::format("operation {}: {} (version {}: {}; version {}: {})", r.id, why,
                         prev_version, describe(prev), version, describe(r));
    }
  }
  if (auto next = std::next(it); next != all.end()) {
    if (std::string why = order_violation(r, next->second); !why.empty()) {
      return fmt::format("operation {}: {} (version {}: {}; version {}: {})", r.id, why, version,
                         describe(r), next->first, describe(next->second));
    }
  }
  return "";
}

std::string ClusterInvariants::check_live_operations(
    const ClusterMetadata& view, const std::vector<node::MigrationRecord>& records) {
  // Two operations of one shard may both be started (the coordinator starts
  // them from its applied view, which can lag its own writes after a
  // leadership change), but the placement's epoch lets only one of them
  // past Prepare: the other fails there.
  std::map<std::uint32_t, std::vector<const node::MigrationRecord*>> live;
  for (const node::MigrationRecord& r : records) {
    if (!r.started || migration_stage_terminal(r.stage)) continue;
    std::vector<const node::MigrationRecord*>& mine = live[r.shard.value()];
    for (const node::MigrationRecord* other : mine) {
      if (other->stage > MigrationStage::kPrepare && r.stage > MigrationStage::kPrepare) {
        return fmt::format("two operations of shard {} are past Prepare at once: {} and {}",
                           r.shard.value(), describe(*other), describe(r));
      }
    }
    mine.push_back(&r);
  }
  const ShardMap& map = view.shard_map();
  for (std::uint32_t s = 0; s < map.shard_count(); ++s) {
    const ShardPlacement& p = map.placement(ShardId(s));
    if (p.learners.empty()) continue;
    auto it = live.find(s);
    bool targeted = false;
    std::string running;
    if (it != live.end()) {
      for (const node::MigrationRecord* r : it->second) {
        targeted |= r->target == p.learners.front();
        running += " " + describe(*r) + ";";
      }
    }
    if (!targeted) {
      return fmt::format("shard {} at epoch {} has the learner {} but no running operation "
                         "targets it{}",
                         s, p.epoch.value(), p.learners.front().str(),
                         running.empty() ? "" : " (running:" + running + ")");
    }
  }
  return "";
}

std::string ClusterInvariants::check_done(const ClusterMetadata& view,
                                          const std::vector<node::MigrationRecord>& records) {
  for (const node::MigrationRecord& r : records) {
    if (r.stage != MigrationStage::kDone || done_checked_.count(r.id) != 0) continue;
    done_checked_.insert(r.id);
    const std::uint64_t seq = migration_batch_seq(r.id);
    bool moved_again = false;
    for (const node::MigrationRecord& other : records) {
      moved_again |= other.shard == r.shard && migration_batch_seq(other.id) > seq &&
                     other.stage >= MigrationStage::kUpdate && !ends_rolled_back(other.stage);
    }
    if (moved_again) continue;
    const ShardPlacement& p = view.shard_map().placement(r.shard);
    if (!p.is_voter(r.target) || p.is_voter(r.source)) {
      return fmt::format("operation {} ended done, but shard {} at epoch {} has the voters {}",
                         describe(r), r.shard.value(), p.epoch.value(), names(p.replicas));
    }
  }
  return "";
}

}  // namespace nodenomad::sim_cluster
