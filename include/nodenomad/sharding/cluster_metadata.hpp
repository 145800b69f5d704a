// ClusterMetadata: the replicated state of the metadata Raft group (group 0),
// its commands, and MetadataStateMachine, the StateMachine that holds it.
// See docs/metadata.md for the model (epochs, routing, bootstrap, recovery).
//
// What it holds: the cluster id, the members (id, host:port address, state),
// the ShardMap (shard count, replication factor, per-shard voters, learners
// and epoch), a config_epoch bumped by every accepted membership or placement
// change, and generic records (namespace, key) -> bytes that later parts (the
// MigrationEngine's operation records) persist through the same group.
// Leader hints are not replicated: they are a node-local routing cache.
//
// Determinism: ClusterMetadata::apply() is a pure function of the state and
// the command: no clock, no randomness, no unordered container whose order
// leaks out. Every replica that applies the same commands from the same
// state reaches byte-identical snapshots and answers the same results.
//
// Thread safety: ClusterMetadata is a value type with no locking (const
// methods may run concurrently). MetadataStateMachine follows the
// StateMachine contract (apply and snapshots on one thread) and adds
// current(), which any thread may call at any time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "nodenomad/sharding/shard_map.hpp"
#include "nodenomad/state_machine.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// --- limits (each bounds memory or a decoded length; apply refuses beyond) ---
inline constexpr std::size_t kMaxClusterIdBytes = 128;
inline constexpr std::size_t kMaxNodeIdBytes = 64;
inline constexpr std::size_t kMaxMemberAddressBytes = 255;
inline constexpr std::uint32_t kMaxMembers = 1024;
inline constexpr std::size_t kMaxRecordNamespaceBytes = 64;
inline constexpr std::size_t kMaxRecordKeyBytes = 1024;
inline constexpr std::size_t kMaxRecordValueBytes = 64u << 10;
inline constexpr std::uint32_t kMaxRecordCount = 65536;
// Namespace + key + value bytes of all records together.
inline constexpr std::uint64_t kMaxRecordTotalBytes = 16u << 20;
// A whole encoded snapshot; the limits above keep a real one under ~21 MiB.
inline constexpr std::size_t kMaxMetadataSnapshotBytes = 32u << 20;

enum class MemberState : std::uint8_t {
  kActive = 1,   // may receive new shard replicas
  kLeaving = 2,  // being drained: keeps what it hosts, receives nothing new
};
std::string_view member_state_name(MemberState state);

struct Member {
  NodeId id;
  std::string address;  // "host:port"
  MemberState state = MemberState::kActive;
  bool operator==(const Member&) const = default;
};

// 1 to kMaxClusterIdBytes bytes of printable ASCII without ' ', ',' or '@'.
Status check_cluster_id(std::string_view cluster_id);
// 1 to kMaxNodeIdBytes bytes of [A-Za-z0-9._-]: ids appear in URLs, the
// CLUSTER_NODES list ("id@host:port,...") and file names. kInvalidArgument.
Status check_node_id(const NodeId& id);
// "host:port": a non-empty host of printable ASCII without ' ', '@' or ','
// (IPv6 in brackets is fine), then a decimal port in [1, 65535]; at most
// kMaxMemberAddressBytes bytes. kInvalidArgument naming the problem.
Status check_member_address(std::string_view address);

struct RecordKey {
  std::string record_namespace;
  std::string key;
  auto operator<=>(const RecordKey&) const = default;
};
struct MetadataRecord {
  std::string value;
  // Taken from a cluster-wide revision counter, so a version is never reused
  // even after a delete and a re-create (no ABA for compare-and-set).
  std::uint64_t version = 0;
  bool operator==(const MetadataRecord&) const = default;
};

// --- commands (encoding drawn in src/sharding/cluster_metadata_codec.cpp) ---
namespace metadata {

// Sets the whole state from scratch; accepted once, before anything else
// (see docs/metadata.md, "Bootstrap"). Members' states must be kActive.
struct Bootstrap {
  std::string cluster_id;
  std::vector<Member> members;
  std::uint32_t shard_count = 0;
  std::uint32_t replication_factor = 0;
  bool operator==(const Bootstrap&) const = default;
};
struct AddMember {
  NodeId id;
  std::string address;
  bool operator==(const AddMember&) const = default;
};
struct RemoveMember {
  NodeId id;
  bool operator==(const RemoveMember&) const = default;
};
struct SetMemberAddress {
  NodeId id;
  std::string address;
  bool operator==(const SetMemberAddress&) const = default;
};
struct SetMemberState {
  NodeId id;
  MemberState state = MemberState::kActive;
  bool operator==(const SetMemberState&) const = default;
};
// Compare-and-set of one shard's voters and learners on its epoch.
struct UpdateShardPlacement {
  ShardId shard;
  Epoch expected_epoch;
  std::vector<NodeId> replicas;  // voters, order kept
  std::vector<NodeId> learners;
  bool operator==(const UpdateShardPlacement&) const = default;
};
// Generic replicated records. if_version: absent = unconditional; 0 = only
// if the record does not exist; v = only if the record is at version v.
struct PutRecord {
  std::string record_namespace;
  std::string key;
  std::string value;
  std::optional<std::uint64_t> if_version;
  bool operator==(const PutRecord&) const = default;
};
struct DeleteRecord {
  std::string record_namespace;
  std::string key;
  std::optional<std::uint64_t> if_version;
  bool operator==(const DeleteRecord&) const = default;
};

}  // namespace metadata

using MetadataCommand =
    std::variant<metadata::Bootstrap, metadata::AddMember, metadata::RemoveMember,
                 metadata::SetMemberAddress, metadata::SetMemberState,
                 metadata::UpdateShardPlacement, metadata::PutRecord, metadata::DeleteRecord>;

// The type byte of each command. Ranges reserved so later commands slot in
// without renumbering: 1-31 membership and placement, 32-63 records,
// 64-255 unassigned.
enum class MetadataCommandType : std::uint8_t {
  kBootstrap = 1,
  kAddMember = 2,
  kRemoveMember = 3,
  kSetMemberAddress = 4,
  kSetMemberState = 5,
  kUpdateShardPlacement = 6,
  kPutRecord = 32,
  kDeleteRecord = 33,
};
MetadataCommandType command_type(const MetadataCommand& command);

inline constexpr std::uint8_t kMetadataCommandFormat = 1;

std::string encode_metadata_command(const MetadataCommand& command);
// Reads untrusted bytes (a Raft entry, a fuzzer): kCorruption naming the
// field for anything that is not exactly one well-formed command; an unknown
// type answers kNotSupported. Never allocates beyond the input's size.
// Limits on sizes are apply's business (it refuses with a result).
Result<MetadataCommand> decode_metadata_command(std::string_view bytes);

// What apply answers for one command (StateMachine::apply's response bytes).
struct MetadataResult {
  // kOk; kInvalidArgument (bad input or a rule, the message says which);
  // kNotFound (no such member or record); kAlreadyExists (id or address
  // taken; a second Bootstrap); kVersionMismatch (a stale epoch or record
  // version; the message names both); kUnavailable (not bootstrapped yet);
  // kCorruption / kNotSupported (the command bytes did not decode).
  Status status;
  Epoch shard_epoch;                 // UpdateShardPlacement: the shard's epoch now
  std::uint64_t config_epoch = 0;    // the cluster's config epoch after this command
  std::uint64_t record_version = 0;  // Put/DeleteRecord: the record's version now; 0 = absent
  bool ok() const { return status.is_ok(); }
  bool operator==(const MetadataResult&) const = default;
};
std::string encode_metadata_result(const MetadataResult& result);
Result<MetadataResult> decode_metadata_result(std::string_view bytes);

namespace metadata_detail {
struct SnapshotCodec;
}

class ClusterMetadata {
 public:
  // The uninitialized state: no cluster, no shard. A node that joins an
  // existing cluster starts here and learns the state from a snapshot or
  // from the log's Bootstrap entry.
  ClusterMetadata() = default;

  // The initial state of a new cluster: the members (all kActive),
  // ShardMap::initial over their ids, config_epoch 1, no record. A pure
  // function of its arguments (member order does not matter). Every founding
  // node computes it identically. kInvalidArgument naming the limit for a bad
  // id, address, count, or a repeated id or address.
  static Result<ClusterMetadata> bootstrap(std::string cluster_id, std::vector<Member> members,
                                           std::uint32_t shard_count,
                                           std::uint32_t replication_factor);
  static Result<ClusterMetadata> bootstrap(const metadata::Bootstrap& command);

  bool initialized() const { return shard_map_.shard_count() > 0; }
  // True once a Bootstrap command was applied through the log; until then
  // every other command is refused (docs/metadata.md, "Bootstrap").
  bool bootstrap_logged() const { return bootstrap_logged_; }
  const std::string& cluster_id() const { return cluster_id_; }
  std::uint32_t shard_count() const { return shard_map_.shard_count(); }
  std::uint32_t replication_factor() const { return shard_map_.replication_factor(); }
  std::uint64_t config_epoch() const { return config_epoch_; }
  const std::vector<Member>& members() const { return members_; }  // ordered by id
  const Member* find_member(const NodeId& id) const;              // nullptr: not a member
  const ShardMap& shard_map() const { return shard_map_; }

  const std::map<RecordKey, MetadataRecord>& records() const { return records_; }
  const MetadataRecord* find_record(std::string_view record_namespace, std::string_view key) const;
  // The records of one namespace as (key, record), ordered by key.
  std::vector<std::pair<std::string, MetadataRecord>> records_in(
      std::string_view record_namespace) const;
  std::uint64_t record_revision() const { return record_revision_; }

  // Applies one command. A refusal changes nothing and says why in the
  // result; it never fails otherwise.
  MetadataResult apply(const MetadataCommand& command);

  // Every invariant of the state (sorted distinct valid members, placements
  // whose ids are members, record limits, counters). kCorruption naming the
  // first broken one. Decoding a snapshot runs it; apply asserts it.
  Status validate() const;

  bool operator==(const ClusterMetadata&) const = default;

 private:
  friend struct metadata_detail::SnapshotCodec;

  MetadataResult apply_bootstrap(const metadata::Bootstrap& command);
  MetadataResult apply_add(const metadata::AddMember& command);
  MetadataResult apply_remove(const metadata::RemoveMember& command);
  MetadataResult apply_set_address(const metadata::SetMemberAddress& command);
  MetadataResult apply_set_state(const metadata::SetMemberState& command);
  MetadataResult apply_placement(const metadata::UpdateShardPlacement& command);
  MetadataResult apply_put(const metadata::PutRecord& command);
  MetadataResult apply_delete(const metadata::DeleteRecord& command);
  MetadataResult result_of(Status status) const;
  Status check_placement_members(const metadata::UpdateShardPlacement& command) const;
  Member* find_member_mut(const NodeId& id);
  const Member* find_member_at(std::string_view address) const;
  // validate() is both: members and placements, then records.
  Status validate_configuration() const;
  Status validate_members() const;
  Status validate_records() const;

  std::string cluster_id_;
  std::uint64_t config_epoch_ = 0;
  bool bootstrap_logged_ = false;
  std::vector<Member> members_;  // ordered by id, distinct ids and addresses
  ShardMap shard_map_;           // never carries leader hints
  std::uint64_t record_revision_ = 0;
  std::uint64_t record_bytes_ = 0;  // namespace + key + value bytes of all records
  std::map<RecordKey, MetadataRecord> records_;
};

// --- snapshots (layout drawn in src/sharding/cluster_metadata_codec.cpp) ---
struct MetadataSnapshot {
  LogIndex applied_index;
  ClusterMetadata metadata;
};
std::string encode_metadata_snapshot(LogIndex applied_index, const ClusterMetadata& metadata);
// kCorruption naming what is wrong (magic, checksum, a field, an invariant)
// for anything but a snapshot encode_metadata_snapshot() could have written.
Result<MetadataSnapshot> decode_metadata_snapshot(std::string_view bytes);

// The metadata group's StateMachine.
//
// Lifetime: a SnapshotSink from begin_restore() points back at this object
// and must not outlive it. A SnapshotSource owns its bytes and may outlive it.
class MetadataStateMachine final : public StateMachine {
 public:
  // Starts from `initial` as the state after `applied_index`: a founding
  // node passes ClusterMetadata::bootstrap(...) and 0 (or its last snapshot
  // after a restart, via begin_restore); a joining node passes the default,
  // uninitialized state. Precondition: initial.validate() is OK.
  explicit MetadataStateMachine(ClusterMetadata initial = ClusterMetadata(),
                                LogIndex applied_index = LogIndex(0));

  // Decodes and applies `command`, answering encode_metadata_result(). An
  // empty command (a new leader's no-op entry) answers empty bytes. Bytes that
  // do not decode answer a kCorruption result and change nothing.
  // kInvalidArgument (an error, not a result) when index <= last_applied_index().
  Result<std::string> apply(LogIndex index, std::string_view command) override;
  LogIndex last_applied_index() const override { return last_applied_; }
  // The whole state, encoded at once (it is small), handed out in chunks.
  Result<std::unique_ptr<SnapshotSource>> open_snapshot() override;
  // Buffers up to kMaxMetadataSnapshotBytes; finish() decodes, validates and
  // checks that the snapshot reflects `index`, then replaces the state. Any
  // error (kCorruption naming the problem) leaves the old state in place.
  Result<std::unique_ptr<SnapshotSink>> begin_restore(LogIndex index) override;

  // The state as of the last apply or restore. Any thread; costs a mutex and
  // a reference count. The object behind the pointer never changes.
  std::shared_ptr<const ClusterMetadata> current() const;
  // The same, with the index it reflects (read-your-writes: wait until the
  // index reaches that of one's own proposal).
  std::pair<LogIndex, std::shared_ptr<const ClusterMetadata>> current_with_index() const;

 private:
  friend class MetadataRestoreSink;
  void install(LogIndex index, ClusterMetadata restored);
  // Moves the published index; also publishes a copy of state_ if it changed.
  void publish(bool state_changed);

  ClusterMetadata state_;  // the apply thread's working copy
  LogIndex last_applied_;
  mutable std::mutex published_mu_;
  LogIndex published_index_;                          // guarded by published_mu_
  std::shared_ptr<const ClusterMetadata> published_;  // guarded by published_mu_
};

}  // namespace nodenomad
