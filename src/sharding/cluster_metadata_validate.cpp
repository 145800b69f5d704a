// ClusterMetadata::validate(): every invariant of the replicated state, in
// one place. A decoded snapshot passes through it before it may replace a
// live state, and apply asserts it after every accepted change.
#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "nodenomad/sharding/cluster_metadata.hpp"

namespace nodenomad {

namespace {

Status corrupt(const Status& status, std::string_view context) {
  return Status::corruption(fmt::format("{}: {}", context, status.message()));
}

}  // namespace

Status ClusterMetadata::validate() const {
  NN_RETURN_IF_ERROR(validate_configuration());
  return initialized() ? validate_records() : Status::ok();
}

Status ClusterMetadata::validate_configuration() const {
  if (!initialized()) {
    // The uninitialized state is exactly the default one.
    if (!cluster_id_.empty() || !members_.empty() || config_epoch_ != 0 || bootstrap_logged_ ||
        record_revision_ != 0 || !records_.empty() || shard_map_.replication_factor() != 0) {
      return Status::corruption(
          "metadata without shards must be the empty state, but it holds a cluster id, members, "
          "records, counters or a bootstrap flag");
    }
    return Status::ok();
  }
  if (Status id = check_cluster_id(cluster_id_); !id.is_ok()) return corrupt(id, "cluster id");
  if (config_epoch_ == 0) return Status::corruption("config epoch 0; it starts at 1");
  if (shard_map_.replication_factor() < 1 ||
      shard_map_.replication_factor() > kMaxReplicationFactor) {
    return Status::corruption(fmt::format("replication factor {} is out of [1, {}]",
                                          shard_map_.replication_factor(), kMaxReplicationFactor));
  }
  NN_RETURN_IF_ERROR(validate_members());
  for (std::uint32_t s = 0; s < shard_map_.shard_count(); ++s) {
    const ShardPlacement& placement = shard_map_.placement(ShardId(s));
    const std::string context = fmt::format("shard {}", s);
    if (placement.epoch.value() == 0) return Status::corruption(context + ": epoch 0");
    const Status shape = check_placement_shape(placement.replicas, placement.learners);
    if (!shape.is_ok()) return corrupt(shape, context);
    if (!placement.leader_hint.empty()) {
      return Status::corruption(context + ": a leader hint in the replicated state");
    }
    for (const std::vector<NodeId>* list : {&placement.replicas, &placement.learners}) {
      for (const NodeId& id : *list) {
        if (find_member(id) == nullptr) {
          return Status::corruption(fmt::format("{}: node {} is not a member", context, id.str()));
        }
      }
    }
  }
  return Status::ok();
}

Status ClusterMetadata::validate_members() const {
  if (members_.empty() || members_.size() > kMaxMembers) {
    return Status::corruption(
        fmt::format("{} members; accepted: 1 to {}", members_.size(), kMaxMembers));
  }
  std::set<std::string_view> addresses;
  for (std::size_t i = 0; i < members_.size(); ++i) {
    const Member& member = members_[i];
    const std::string context = fmt::format("member {}", i);
    if (Status id = check_node_id(member.id); !id.is_ok()) return corrupt(id, context);
    if (i > 0 && !(members_[i - 1].id < member.id)) {
      return Status::corruption(fmt::format("{} ({}): members are not in strict id order", context,
                                            member.id.str()));
    }
    if (Status address = check_member_address(member.address); !address.is_ok()) {
      return corrupt(address, context);
    }
    if (!addresses.insert(member.address).second) {
      return Status::corruption(
          fmt::format("{} ({}): address {} is used twice", context, member.id.str(), member.address));
    }
    if (member.state != MemberState::kActive && member.state != MemberState::kLeaving) {
      return Status::corruption(fmt::format("{} ({}): unknown state {}", context, member.id.str(),
                                            static_cast<int>(member.state)));
    }
  }
  return Status::ok();
}

Status ClusterMetadata::validate_records() const {
  if (records_.size() > kMaxRecordCount) {
    return Status::corruption(
        fmt::format("{} records; at most {} (kMaxRecordCount)", records_.size(), kMaxRecordCount));
  }
  std::uint64_t total_bytes = 0;
  for (const auto& [key, record] : records_) {
    const bool name_ok = !key.record_namespace.empty() &&
                         key.record_namespace.size() <= kMaxRecordNamespaceBytes &&
                         !key.key.empty() && key.key.size() <= kMaxRecordKeyBytes;
    if (!name_ok || record.value.size() > kMaxRecordValueBytes) {
      return Status::corruption(fmt::format(
          "record of namespace {} bytes, key {} bytes, value {} bytes is outside the limits",
          key.record_namespace.size(), key.key.size(), record.value.size()));
    }
    if (record.version == 0 || record.version > record_revision_) {
      return Status::corruption(fmt::format("record {}/{} has version {} outside [1, {}]",
                                            key.record_namespace, key.key, record.version,
                                            record_revision_));
    }
    total_bytes += key.record_namespace.size() + key.key.size() + record.value.size();
  }
  if (total_bytes > kMaxRecordTotalBytes) {
    return Status::corruption(fmt::format("records take {} bytes; at most {}", total_bytes,
                                          kMaxRecordTotalBytes));
  }
  if (total_bytes != record_bytes_) {
    return Status::corruption(fmt::format("records take {} bytes but the state counts {}",
                                          total_bytes, record_bytes_));
  }
  return Status::ok();
}

}  // namespace nodenomad
