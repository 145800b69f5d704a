// The migration engine's records and node-to-node calls (docs/migration.md,
// "Execution"). Each travels as the `value` of an RpcRequest (op kMigrate*)
// or the `value` of an RpcResponse's reply, or is stored as a record of the
// metadata group (namespace kMigrationNamespace, key = operation id).
//
// Layouts: u8 format version (= 1), then the fields in declaration order;
// integers are LEB128 varints, strings a varint length and the bytes, bools
// and enums one byte, lists a varint count then the items. Decoders read
// untrusted bytes: lengths are bounded by what remains, and anything
// malformed or unknown answers kCorruption naming the structure.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/migration/migration_status.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad::node {

inline constexpr std::string_view kMigrationNamespace = "migration";
inline constexpr std::size_t kMigrationStages = 5;  // Prepare .. Cleanup

// One operation as the metadata group records it. Every stage transition is
// written here before the stage's effects begin.
struct MigrationRecord {
  std::string id;
  std::string batch_id;
  ShardId shard;
  NodeId source;
  NodeId target;
  Epoch expected_epoch;  // the shard's epoch when the operation was planned
  MigrationStage stage = MigrationStage::kPrepare;
  // Started (counted against the concurrency limits); false while queued.
  bool started = false;
  // Rolling back towards kFailed / kCancelled (only before Update).
  bool rolling_back = false;
  bool cancel_requested = false;
  bool paused = false;
  std::uint64_t bandwidth_bytes_per_s = 0;
  std::uint64_t created_ms = 0;   // Unix time, the coordinator's clock
  std::uint64_t finished_ms = 0;
  std::uint64_t stage_started_ms = 0;  // Unix time the current stage began
  std::array<std::uint64_t, kMigrationStages> stage_ms{};
  std::uint64_t bytes_total = 0;
  std::uint64_t keys_total = 0;
  std::uint64_t bytes_done = 0;
  std::uint32_t verify_mismatches = 0;
  std::uint64_t bytes_freed = 0;
  std::string error;

  bool operator==(const MigrationRecord&) const = default;
};
std::string encode_migration_record(const MigrationRecord& record);
Result<MigrationRecord> decode_migration_record(std::string_view bytes);

// --- coordinator -> the shard's leader (RpcOp::kMigrateShard) ---
enum class ShardAction : std::uint8_t {
  kReport = 1,         // only report (and keep the throttle current)
  kAddLearner = 2,     // add `target` as a learner of the group
  kVerify = 3,         // start or continue verifying `target` against the leader
  kPromote = 4,        // joint change: target becomes a voter, source leaves
  kRemoveLearner = 5,  // rollback: `target` leaves the group
  kTransferLeader = 6, // hand leadership to `target`, a voter (leader spreading)
};

struct ShardCall {
  std::string op_id;
  ShardId shard;
  ShardAction action = ShardAction::kReport;
  NodeId source;
  NodeId target;
  // Throttle of the snapshot stream to `target`: bytes/s, 0 = none.
  std::uint64_t bandwidth_bytes_per_s = 0;
  bool paused = false;
  bool operator==(const ShardCall&) const = default;
};

enum class VerifyState : std::uint8_t {
  kNone = 0,
  kRunning = 1,   // digests being computed or buckets re-sent
  kMatched = 2,   // the target's digest equals the leader's at `verify_index`
  kFailed = 3,    // no match after the allowed repair rounds; `note` says why
};

struct ShardReport {
  std::vector<NodeId> voters;
  std::vector<NodeId> learners;
  bool joint = false;
  LogIndex last_index;
  LogIndex commit;
  LogIndex target_match;
  bool target_snapshotting = false;
  LogIndex snapshot_index;
  std::uint64_t snapshot_bytes_acked = 0;
  std::uint64_t keys = 0;   // the leader's state
  std::uint64_t bytes = 0;
  VerifyState verify = VerifyState::kNone;
  LogIndex verify_index;
  std::uint64_t verify_root = 0;
  std::uint32_t verify_mismatches = 0;
  std::string note;  // what the leader is doing or waiting for
  bool operator==(const ShardReport&) const = default;
};
std::string encode_shard_call(const ShardCall& call);
Result<ShardCall> decode_shard_call(std::string_view bytes);
std::string encode_shard_report(const ShardReport& report);
Result<ShardReport> decode_shard_report(std::string_view bytes);

// --- the shard's leader -> the target (RpcOp::kMigrateTarget) ---
enum class TargetAction : std::uint8_t {
  kHold = 1,     // apply through `index`, hold there, digest the state
  kPoll = 2,     // the digest, once computed
  kRepair = 3,   // replace `buckets` with `chunks` (taken at the held index), digest again
  kRelease = 4,  // stop holding
};

struct TargetCall {
  std::string op_id;
  ShardId shard;
  TargetAction action = TargetAction::kPoll;
  LogIndex index;
  std::vector<std::uint32_t> buckets;
  std::vector<std::string> chunks;
  // kRepair: the round this repair starts (1 for the first), so that a
  // duplicated repair is applied once.
  std::uint32_t round = 0;
  bool operator==(const TargetCall&) const = default;
};

struct TargetReport {
  // kOk with `digest` empty: still computing. kAborted: the replica was
  // already past `index` (the leader picks a later one).
  LogIndex applied;
  std::string digest;  // encode_shard_digest(), once computed
  std::uint32_t round = 0;
  bool operator==(const TargetReport&) const = default;
};
std::string encode_target_call(const TargetCall& call);
Result<TargetCall> decode_target_call(std::string_view bytes);
std::string encode_target_report(const TargetReport& report);
Result<TargetReport> decode_target_report(std::string_view bytes);

// --- a client call forwarded to the metadata leader (RpcOp::kMigrationAdmin) ---
enum class AdminAction : std::uint8_t {
  kCreate = 1,
  kRebalance = 2,
  kDrain = 3,
  kList = 4,
  kGet = 5,
  kControl = 6,
  kExecute = 7,  // a plan made elsewhere: moves[i] = (shards[i], sources[i], targets[i], epochs[i])
};

struct AdminCall {
  AdminAction action = AdminAction::kList;
  std::vector<ShardId> shards;
  NodeId source;  // kCreate; kDrain: the node drained
  NodeId target;
  std::string op_id;  // kGet, kControl
  MigrationControl control = MigrationControl::kPause;
  std::uint64_t bandwidth_bytes_per_s = 0;
  // kExecute: one entry per move, parallel to `shards`.
  std::vector<NodeId> sources;
  std::vector<NodeId> targets;
  std::vector<std::uint64_t> epochs;
  bool operator==(const AdminCall&) const = default;
};
std::string encode_admin_call(const AdminCall& call);
Result<AdminCall> decode_admin_call(std::string_view bytes);

std::string encode_migration_batch(const MigrationBatch& batch);
Result<MigrationBatch> decode_migration_batch(std::string_view bytes);
std::string encode_migration_statuses(const std::vector<MigrationStatus>& statuses);
Result<std::vector<MigrationStatus>> decode_migration_statuses(std::string_view bytes);

}  // namespace nodenomad::node
