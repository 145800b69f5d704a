// What a client sees of shard migrations: the stages, an operation's status
// and progress, and the answers of the migration calls of ClientApi
// (docs/migration.md; the HTTP shape is in docs/http_api.md).
//
// Thread safety: plain values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/status.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {

// The five stages of DESIGN.md section 3, then the three ends. The numbers
// are stored in the metadata group's operation records: never renumber.
enum class MigrationStage : std::uint8_t {
  kPrepare = 1,    // learner added to the shard's group on the target
  kTransfer = 2,   // snapshot streamed to the learner, then log catch-up
  kVerify = 3,     // digests compared at one applied index
  kUpdate = 4,     // target promoted, source removed, ShardMap epoch bumped
  kCleanup = 5,    // the source drops the shard's files
  kDone = 6,
  kFailed = 7,     // rolled back (before Update) after an error or timeout
  kCancelled = 8,  // rolled back (before Update) on request
};

// "prepare", "transfer", ... as API.md spells them; "unknown" otherwise.
inline std::string_view migration_stage_name(MigrationStage stage) {
  switch (stage) {
    case MigrationStage::kPrepare: return "prepare";
    case MigrationStage::kTransfer: return "transfer";
    case MigrationStage::kVerify: return "verify";
    case MigrationStage::kUpdate: return "update";
    case MigrationStage::kCleanup: return "cleanup";
    case MigrationStage::kDone: return "done";
    case MigrationStage::kFailed: return "failed";
    case MigrationStage::kCancelled: return "cancelled";
  }
  return "unknown";
}

// The inverse; nullopt for an unknown name.
inline std::optional<MigrationStage> parse_migration_stage(std::string_view name) {
  for (std::uint8_t v = 1; v <= 8; ++v) {
    const auto stage = static_cast<MigrationStage>(v);
    if (migration_stage_name(stage) == name) return stage;
  }
  return std::nullopt;
}

// kDone, kFailed or kCancelled.
inline bool migration_stage_terminal(MigrationStage stage) {
  return stage == MigrationStage::kDone || stage == MigrationStage::kFailed ||
         stage == MigrationStage::kCancelled;
}

struct MigrationProgress {
  std::uint64_t bytes_total = 0;  // the shard's snapshot size when Transfer began
  std::uint64_t bytes_done = 0;   // snapshot bytes acknowledged by the target
  std::uint64_t keys_total = 0;
  std::uint64_t keys_done = 0;
  double percent = 0;             // of the whole move (0-100)
  double rate_bytes_per_s = 0;    // over the last few seconds of Transfer
  std::optional<double> eta_s;    // none when unknown
};

struct MigrationStatus {
  std::string id;        // "op-..." — stable, unique in the cluster
  std::string batch_id;  // the request (create / rebalance / drain) it came from
  ShardId shard;
  NodeId source;
  NodeId target;
  MigrationStage stage = MigrationStage::kPrepare;
  // Waiting for a slot under MAX_CONCURRENT_MIGRATIONS (stage is kPrepare).
  bool queued = false;
  bool paused = false;
  bool cancel_requested = false;
  // The operation's own limit in bytes/s; 0: none (the node limit applies).
  std::uint64_t bandwidth_bytes_per_s = 0;
  MigrationProgress progress;
  std::uint64_t started_at_ms = 0;   // Unix time
  std::uint64_t finished_at_ms = 0;  // 0 while running
  // Milliseconds spent in each stage, indexed by stage - 1 (Prepare..Cleanup).
  std::vector<std::uint64_t> stage_ms;
  std::uint32_t verify_mismatches = 0;  // buckets found different and re-sent
  std::uint64_t bytes_freed = 0;        // by the source's Cleanup
  std::string error;  // why it failed or was cancelled; empty otherwise
};

// What create / rebalance / drain answer: the operations they started.
struct MigrationBatch {
  std::string id;
  std::vector<std::string> operations;
};

struct MigrationRequest {
  std::vector<ShardId> shards;
  NodeId source;
  NodeId target;
  std::uint64_t bandwidth_bytes_per_s = 0;  // 0: no per-operation limit
};

// What pause / resume / cancel / set_bandwidth ask of one operation.
enum class MigrationControl : std::uint8_t {
  kCancel = 1,
  kPause = 2,
  kResume = 3,
  kSetBandwidth = 4,
};

}  // namespace nodenomad
