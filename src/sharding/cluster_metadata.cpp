// ClusterMetadata: bootstrap, the deterministic apply of every command, and
// the invariants. The encodings live in cluster_metadata_codec.cpp.
#include "nodenomad/sharding/cluster_metadata.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <set>
#include <type_traits>

#include "nodenomad/assert.hpp"

namespace nodenomad {

namespace {

bool is_id_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '_' || c == '-';
}

// Printable ASCII without space; ',' and '@' would break the CLUSTER_NODES
// list ("id@host:port,...") that addresses are written in.
bool is_host_char(char c) { return c > ' ' && c < 0x7f && c != ',' && c != '@'; }

bool by_id(const Member& a, const Member& b) { return a.id < b.id; }

Status check_member_state(MemberState state) {
  if (state != MemberState::kActive && state != MemberState::kLeaving) {
    return Status::invalid_argument(fmt::format("member state {} is unknown; accepted: 1 (active), "
                                                "2 (leaving)", static_cast<int>(state)));
  }
  return Status::ok();
}

Status check_record_name(std::string_view record_namespace, std::string_view key) {
  if (record_namespace.empty() || record_namespace.size() > kMaxRecordNamespaceBytes) {
    return Status::invalid_argument(fmt::format(
        "record namespace of {} bytes; accepted: 1 to {} bytes (kMaxRecordNamespaceBytes)",
        record_namespace.size(), kMaxRecordNamespaceBytes));
  }
  if (key.empty() || key.size() > kMaxRecordKeyBytes) {
    return Status::invalid_argument(
        fmt::format("record key of {} bytes in namespace {}; accepted: 1 to {} bytes "
                    "(kMaxRecordKeyBytes)",
                    key.size(), record_namespace, kMaxRecordKeyBytes));
  }
  return Status::ok();
}

std::uint64_t record_size(const RecordKey& key, const MetadataRecord& record) {
  return key.record_namespace.size() + key.key.size() + record.value.size();
}

std::string shard_list(const std::vector<ShardId>& shards) {
  // Bounded so that a node hosting thousands of shards gives a short message.
  constexpr std::size_t kListed = 8;
  std::string out;
  for (std::size_t i = 0; i < shards.size() && i < kListed; ++i) {
    out += fmt::format("{}{}", i == 0 ? "" : ", ", shards[i].value());
  }
  if (shards.size() > kListed) out += fmt::format(" and {} more", shards.size() - kListed);
  return out;
}

}  // namespace

Status check_cluster_id(std::string_view cluster_id) {
  if (cluster_id.empty() || cluster_id.size() > kMaxClusterIdBytes) {
    return Status::invalid_argument(fmt::format(
        "cluster id of {} bytes; accepted: 1 to {} bytes (kMaxClusterIdBytes)", cluster_id.size(),
        kMaxClusterIdBytes));
  }
  if (!std::all_of(cluster_id.begin(), cluster_id.end(), is_host_char)) {
    return Status::invalid_argument(fmt::format(
        "cluster id \"{}\" holds a space, control byte, ',' or '@'", cluster_id));
  }
  return Status::ok();
}

std::string_view member_state_name(MemberState state) {
  switch (state) {
    case MemberState::kActive: return "active";
    case MemberState::kLeaving: return "leaving";
  }
  return "unknown";
}

Status check_node_id(const NodeId& id) {
  const std::string& name = id.str();
  if (name.empty() || name.size() > kMaxNodeIdBytes) {
    return Status::invalid_argument(fmt::format(
        "node id of {} bytes; accepted: 1 to {} bytes (kMaxNodeIdBytes)", name.size(),
        kMaxNodeIdBytes));
  }
  if (!std::all_of(name.begin(), name.end(), is_id_char)) {
    return Status::invalid_argument(
        fmt::format("node id \"{}\" has a byte outside [A-Za-z0-9._-]", name));
  }
  return Status::ok();
}

Status check_member_address(std::string_view address) {
  if (address.size() > kMaxMemberAddressBytes) {
    return Status::invalid_argument(fmt::format(
        "address of {} bytes; at most {} (kMaxMemberAddressBytes)", address.size(),
        kMaxMemberAddressBytes));
  }
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return Status::invalid_argument(
        fmt::format("address \"{}\" is not of the form host:port", address));
  }
  const std::string_view host = address.substr(0, colon);
  const std::string_view port = address.substr(colon + 1);
  if (!std::all_of(host.begin(), host.end(), is_host_char)) {
    return Status::invalid_argument(fmt::format(
        "address \"{}\": the host holds a space, control byte, ',' or '@'", address));
  }
  std::uint32_t port_number = 0;
  const bool digits = !port.empty() && port.size() <= 5 &&
                      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (digits) {
    for (const char c : port) port_number = port_number * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (!digits || port_number < 1 || port_number > 65535) {
    return Status::invalid_argument(
        fmt::format("address \"{}\": the port must be a decimal number in [1, 65535]", address));
  }
  return Status::ok();
}

Result<ClusterMetadata> ClusterMetadata::bootstrap(std::string cluster_id,
                                                   std::vector<Member> members,
                                                   std::uint32_t shard_count,
                                                   std::uint32_t replication_factor) {
  NN_RETURN_IF_ERROR(check_cluster_id(cluster_id));
  if (members.empty() || members.size() > kMaxMembers) {
    return Status::invalid_argument(fmt::format(
        "bootstrap with {} members; accepted: 1 to {} (kMaxMembers)", members.size(), kMaxMembers));
  }
  for (const Member& member : members) {
    const Status id = check_node_id(member.id);
    if (!id.is_ok()) return id.with_context("bootstrap");
    const Status address = check_member_address(member.address);
    if (!address.is_ok()) return address.with_context(fmt::format("bootstrap member {}", member.id.str()));
    if (member.state != MemberState::kActive) {
      return Status::invalid_argument(
          fmt::format("bootstrap member {} is not active; founding members are", member.id.str()));
    }
  }
  // Sorting makes the state independent of the order the members were given.
  std::sort(members.begin(), members.end(), by_id);
  std::set<std::string_view> addresses;
  for (std::size_t i = 0; i < members.size(); ++i) {
    if (i > 0 && members[i - 1].id == members[i].id) {
      return Status::invalid_argument(
          fmt::format("bootstrap: member {} is listed twice", members[i].id.str()));
    }
    if (!addresses.insert(members[i].address).second) {
      return Status::invalid_argument(fmt::format(
          "bootstrap: address {} is given to two members", members[i].address));
    }
  }
  std::vector<NodeId> ids;
  ids.reserve(members.size());
  for (const Member& member : members) ids.push_back(member.id);
  NN_ASSIGN_OR_RETURN(ShardMap map, ShardMap::initial(ids, shard_count, replication_factor));

  ClusterMetadata state;
  state.cluster_id_ = std::move(cluster_id);
  state.config_epoch_ = 1;
  state.members_ = std::move(members);
  state.shard_map_ = std::move(map);
  NN_ASSERT(state.validate().is_ok(), state.validate().to_string());
  return state;
}

Result<ClusterMetadata> ClusterMetadata::bootstrap(const metadata::Bootstrap& command) {
  return bootstrap(command.cluster_id, command.members, command.shard_count,
                   command.replication_factor);
}

const Member* ClusterMetadata::find_member(const NodeId& id) const {
  const auto it = std::lower_bound(members_.begin(), members_.end(), Member{id, {}, {}}, by_id);
  return it != members_.end() && it->id == id ? &*it : nullptr;
}

Member* ClusterMetadata::find_member_mut(const NodeId& id) {
  return const_cast<Member*>(std::as_const(*this).find_member(id));
}

const Member* ClusterMetadata::find_member_at(std::string_view address) const {
  for (const Member& member : members_) {
    if (member.address == address) return &member;
  }
  return nullptr;
}

const MetadataRecord* ClusterMetadata::find_record(std::string_view record_namespace,
                                                   std::string_view key) const {
  const auto it = records_.find(RecordKey{std::string(record_namespace), std::string(key)});
  return it == records_.end() ? nullptr : &it->second;
}

std::vector<std::pair<std::string, MetadataRecord>> ClusterMetadata::records_in(
    std::string_view record_namespace) const {
  std::vector<std::pair<std::string, MetadataRecord>> out;
  // RecordKey orders by namespace first, so one namespace is one range.
  for (auto it = records_.lower_bound(RecordKey{std::string(record_namespace), {}});
       it != records_.end() && it->first.record_namespace == record_namespace; ++it) {
    out.emplace_back(it->first.key, it->second);
  }
  return out;
}

MetadataResult ClusterMetadata::result_of(Status status) const {
  // An answer with the current config epoch; OK or a refusal.
  MetadataResult result;
  result.status = std::move(status);
  // Before the Bootstrap entry, a founding replica (which computed the state
  // itself) and a joining one (which has none) must still answer the same.
  result.config_epoch = bootstrap_logged_ ? config_epoch_ : 0;
  return result;
}

MetadataResult ClusterMetadata::apply(const MetadataCommand& command) {
  if (!bootstrap_logged_ && !std::holds_alternative<metadata::Bootstrap>(command)) {
    return result_of(Status::unavailable(
        "the metadata group has not applied its Bootstrap entry yet; retry once it has"));
  }
  MetadataResult result = std::visit(
      [this](const auto& body) -> MetadataResult {
        using T = std::decay_t<decltype(body)>;
        if constexpr (std::is_same_v<T, metadata::Bootstrap>) {
          return apply_bootstrap(body);
        } else if constexpr (std::is_same_v<T, metadata::AddMember>) {
          return apply_add(body);
        } else if constexpr (std::is_same_v<T, metadata::RemoveMember>) {
          return apply_remove(body);
        } else if constexpr (std::is_same_v<T, metadata::SetMemberAddress>) {
          return apply_set_address(body);
        } else if constexpr (std::is_same_v<T, metadata::SetMemberState>) {
          return apply_set_state(body);
        } else if constexpr (std::is_same_v<T, metadata::UpdateShardPlacement>) {
          return apply_placement(body);
        } else if constexpr (std::is_same_v<T, metadata::PutRecord>) {
          return apply_put(body);
        } else {
          static_assert(std::is_same_v<T, metadata::DeleteRecord>, "a command without apply");
          return apply_delete(body);
        }
      },
      command);
  // Invariants after every accepted change: a broken one must stop the node
  // before it is snapshotted. Members and placements are small and change
  // rarely, so they are checked whole; records may be many, so a record
  // command checks only the totals it touched.
  if (result.ok()) {
    if (std::holds_alternative<metadata::PutRecord>(command) ||
        std::holds_alternative<metadata::DeleteRecord>(command)) {
      NN_ASSERT(records_.size() <= kMaxRecordCount && record_bytes_ <= kMaxRecordTotalBytes,
                records_.size(), " records of ", record_bytes_, " bytes");
    } else {
      NN_ASSERT(validate_configuration().is_ok(), validate_configuration().to_string());
    }
  }
  return result;
}

MetadataResult ClusterMetadata::apply_bootstrap(const metadata::Bootstrap& command) {
  if (bootstrap_logged_) {
    return result_of(Status::already_exists(fmt::format(
        "cluster {} was bootstrapped already; a second Bootstrap is refused", cluster_id_)));
  }
  Result<ClusterMetadata> fresh = bootstrap(command);
  if (!fresh.is_ok()) return result_of(fresh.status());
  // Replaces whatever this replica computed for itself before the entry:
  // from here on every replica holds exactly what the log says.
  *this = std::move(fresh).value();
  bootstrap_logged_ = true;
  MetadataResult result;
  result.config_epoch = config_epoch_;
  return result;
}

MetadataResult ClusterMetadata::apply_add(const metadata::AddMember& command) {
  if (Status id = check_node_id(command.id); !id.is_ok()) return result_of(id.with_context("AddMember"));
  if (Status address = check_member_address(command.address); !address.is_ok()) {
    return result_of(address.with_context(fmt::format("AddMember {}", command.id.str())));
  }
  if (const Member* existing = find_member(command.id); existing != nullptr) {
    if (existing->address == command.address) return result_of(Status::ok());  // a retry
    return result_of(Status::already_exists(fmt::format(
        "node {} is already a member at {}; AddMember asked for {} (use SetMemberAddress)",
        command.id.str(), existing->address, command.address)));
  }
  if (const Member* other = find_member_at(command.address); other != nullptr) {
    return result_of(Status::already_exists(fmt::format(
        "address {} belongs to member {} already", command.address, other->id.str())));
  }
  if (members_.size() >= kMaxMembers) {
    return result_of(Status::invalid_argument(
        fmt::format("the cluster has {} members, the most it may have (kMaxMembers)", kMaxMembers)));
  }
  Member member{command.id, command.address, MemberState::kActive};
  members_.insert(std::upper_bound(members_.begin(), members_.end(), member, by_id),
                  std::move(member));
  ++config_epoch_;
  return result_of(Status::ok());
}

MetadataResult ClusterMetadata::apply_remove(const metadata::RemoveMember& command) {
  const Member* member = find_member(command.id);
  if (member == nullptr) {
    return result_of(Status::not_found(fmt::format("node {} is not a member", command.id.str())));
  }
  const std::vector<ShardId> hosted = shard_map_.shards_on(command.id);
  if (!hosted.empty()) {
    return result_of(Status::invalid_argument(fmt::format(
        "node {} still hosts {} shard replica(s) (shards {}); move them off before removing it",
        command.id.str(), hosted.size(), shard_list(hosted))));
  }
  members_.erase(members_.begin() + (member - members_.data()));
  ++config_epoch_;
  return result_of(Status::ok());
}

MetadataResult ClusterMetadata::apply_set_address(const metadata::SetMemberAddress& command) {
  Member* member = find_member_mut(command.id);
  if (member == nullptr) {
    return result_of(Status::not_found(fmt::format("node {} is not a member", command.id.str())));
  }
  if (Status address = check_member_address(command.address); !address.is_ok()) {
    return result_of(address.with_context(fmt::format("SetMemberAddress {}", command.id.str())));
  }
  if (member->address == command.address) return result_of(Status::ok());
  if (const Member* other = find_member_at(command.address); other != nullptr) {
    return result_of(Status::already_exists(fmt::format(
        "address {} belongs to member {} already", command.address, other->id.str())));
  }
  member->address = command.address;
  ++config_epoch_;
  return result_of(Status::ok());
}

MetadataResult ClusterMetadata::apply_set_state(const metadata::SetMemberState& command) {
  Member* member = find_member_mut(command.id);
  if (member == nullptr) {
    return result_of(Status::not_found(fmt::format("node {} is not a member", command.id.str())));
  }
  if (Status state = check_member_state(command.state); !state.is_ok()) return result_of(state);
  if (member->state == command.state) return result_of(Status::ok());
  member->state = command.state;
  ++config_epoch_;
  return result_of(Status::ok());
}

Status ClusterMetadata::check_placement_members(
    const metadata::UpdateShardPlacement& command) const {
  const ShardPlacement& current = shard_map_.placement(command.shard);
  for (const std::vector<NodeId>* list : {&command.replicas, &command.learners}) {
    for (const NodeId& id : *list) {
      const Member* member = find_member(id);
      if (member == nullptr) {
        return Status::invalid_argument(fmt::format(
            "shard {}: node {} is not a member of the cluster", command.shard.value(), id.str()));
      }
      // A draining node keeps what it hosts until moved off, but gets nothing new.
      if (member->state == MemberState::kLeaving && !current.hosts(id)) {
        return Status::invalid_argument(fmt::format(
            "shard {}: node {} is leaving and may not receive a new replica",
            command.shard.value(), id.str()));
      }
    }
  }
  return Status::ok();
}

MetadataResult ClusterMetadata::apply_placement(const metadata::UpdateShardPlacement& command) {
  if (!shard_map_.has_shard(command.shard)) {
    return result_of(Status::invalid_argument(
        fmt::format("shard {} does not exist; the cluster has {} shards (0 to {})",
                    command.shard.value(), shard_count(), shard_count() - 1)));
  }
  const Epoch current = shard_map_.placement(command.shard).epoch;
  MetadataResult result = result_of(Status::ok());
  result.shard_epoch = current;
  // The epoch is checked first: a stale writer learns it is stale even when
  // its placement would also be wrong.
  if (current != command.expected_epoch) {
    result.status = Status::version_mismatch(
        fmt::format("shard {} is at epoch {}, but the update expected epoch {}",
                    command.shard.value(), current.value(), command.expected_epoch.value()));
    return result;
  }
  result.status = check_placement_shape(command.replicas, command.learners);
  if (result.status.is_ok()) result.status = check_placement_members(command);
  if (result.status.is_ok()) {
    result.status = shard_map_.replace_placement(command.shard, command.expected_epoch,
                                                 command.replicas, command.learners);
  }
  if (!result.ok()) {
    result.status = result.status.with_context("UpdateShardPlacement");
    return result;
  }
  ++config_epoch_;
  result.shard_epoch = shard_map_.placement(command.shard).epoch;
  result.config_epoch = config_epoch_;
  return result;
}

MetadataResult ClusterMetadata::apply_put(const metadata::PutRecord& command) {
  if (Status name = check_record_name(command.record_namespace, command.key); !name.is_ok()) {
    return result_of(name.with_context("PutRecord"));
  }
  if (command.value.size() > kMaxRecordValueBytes) {
    return result_of(Status::invalid_argument(fmt::format(
        "PutRecord {}/{}: value of {} bytes; at most {} (kMaxRecordValueBytes)",
        command.record_namespace, command.key, command.value.size(), kMaxRecordValueBytes)));
  }
  RecordKey key{command.record_namespace, command.key};
  const auto it = records_.find(key);
  const std::uint64_t current_version = it == records_.end() ? 0 : it->second.version;
  MetadataResult result = result_of(Status::ok());
  result.record_version = current_version;
  if (command.if_version.has_value() && *command.if_version != current_version) {
    result.status = Status::version_mismatch(fmt::format(
        "record {}/{} is at version {} (0 = absent), but the write expected version {}",
        command.record_namespace, command.key, current_version, *command.if_version));
    return result;
  }
  const std::uint64_t old_bytes = it == records_.end() ? 0 : record_size(it->first, it->second);
  const std::uint64_t new_bytes =
      command.record_namespace.size() + command.key.size() + command.value.size();
  if (it == records_.end() && records_.size() >= kMaxRecordCount) {
    result.status = Status::invalid_argument(fmt::format(
        "PutRecord {}/{}: the metadata holds {} records, the most it may (kMaxRecordCount)",
        command.record_namespace, command.key, records_.size()));
    return result;
  }
  if (record_bytes_ - old_bytes + new_bytes > kMaxRecordTotalBytes) {
    result.status = Status::invalid_argument(fmt::format(
        "PutRecord {}/{}: records would take {} bytes; at most {} (kMaxRecordTotalBytes)",
        command.record_namespace, command.key, record_bytes_ - old_bytes + new_bytes,
        kMaxRecordTotalBytes));
    return result;
  }
  ++record_revision_;
  record_bytes_ = record_bytes_ - old_bytes + new_bytes;
  records_.insert_or_assign(std::move(key), MetadataRecord{command.value, record_revision_});
  result.record_version = record_revision_;
  return result;
}

MetadataResult ClusterMetadata::apply_delete(const metadata::DeleteRecord& command) {
  if (Status name = check_record_name(command.record_namespace, command.key); !name.is_ok()) {
    return result_of(name.with_context("DeleteRecord"));
  }
  const auto it = records_.find(RecordKey{command.record_namespace, command.key});
  if (it == records_.end()) {
    return result_of(Status::not_found(
        fmt::format("record {}/{} does not exist", command.record_namespace, command.key)));
  }
  if (command.if_version.has_value() && *command.if_version != it->second.version) {
    MetadataResult result = result_of(Status::version_mismatch(fmt::format(
        "record {}/{} is at version {}, but the delete expected version {}",
        command.record_namespace, command.key, it->second.version, *command.if_version)));
    result.record_version = it->second.version;
    return result;
  }
  record_bytes_ -= record_size(it->first, it->second);
  records_.erase(it);
  return result_of(Status::ok());
}

}  // namespace nodenomad
