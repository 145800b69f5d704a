// MigrationCoordinator: the part of the MigrationEngine that runs on the
// metadata group's leader (docs/migration.md, "Execution"). It keeps every
// operation recorded in the metadata group (namespace "migration") moving
// through the five stages of DESIGN.md section 3, one idempotent step at a
// time:
//
//   - each step looks at the record, the ShardMap and what the shard's
//     leader reports, and does the next thing (add the learner, wait for the
//     stream, ask for a digest match, promote, drop the source's copy);
//   - a stage change is written to the record (a compare-and-set on the
//     record's version) before anything of the next stage is done, so a new
//     metadata leader resumes each operation where the old one stopped, from
//     the records alone;
//   - a cancel, a stalled stage (migration_timeout_ms) or a failed Verify
//     before Update rolls the operation back: the learner leaves the group
//     and the ShardMap, and its copy is dropped. From Update on, the
//     operation is only ever finished.
//
// Thread safety: none; it runs on the node's loop.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>

#include "node/catch_up_rounds.hpp"
#include "node/migration_wire.hpp"
#include "node/node_rpc.hpp"
#include "nodenomad/migration/migration_plan.hpp"
#include "nodenomad/node.hpp"
#include "nodenomad/sharding/cluster_metadata.hpp"

namespace nodenomad::node {

class MigrationCoordinator {
 public:
  explicit MigrationCoordinator(Node::Impl& node) : node_(node) {}

  // Called every tick; acts while this node leads the metadata group:
  // every kStepIntervalMs, and at once after an operation's record or its
  // shard's placement changed (wake()), so a stage does not wait for the
  // next interval to begin.
  void tick();
  // A client's migration call (this node leads the metadata group). Answers
  // an encoded MigrationBatch (create, rebalance, drain), statuses (list),
  // or one status (get, control).
  void handle(AdminCall call, std::function<void(Result<std::string>)> done);
  // A member joined: plan a rebalance when the options ask for it.
  void on_member_added();
  // Migration metrics, from the records this node's metadata replica holds.
  std::string metrics_text(const ClusterMetadata& view) const;

 private:
  // What this coordinator knows of an operation beyond its record.
  struct Live {
    bool busy = false;  // a call or a record write is in flight
    MigrationStage stage = MigrationStage::kPrepare;
    bool rolling_back = false;
    std::uint64_t progress_ms = 0;  // monotonic: last progress (or stage start)
    std::uint64_t bytes_done = 0;
    LogIndex match;
    double rate = 0;               // bytes/s, smoothed
    std::uint64_t rate_ms = 0;
    std::uint64_t rate_bytes = 0;
    int drop_attempts = 0;
    std::string note;
    std::optional<CatchUpRounds> catch_up;  // Transfer, once the snapshot is in
  };
  using Done = std::function<void(Result<std::string>)>;

  void run_steps();
  std::uint64_t catch_up_round_ms() const;
  // Steps again as soon as the loop is free.
  void wake();
  void step(const MigrationRecord& r, std::uint64_t version, Live& live);
  void step_prepare(const MigrationRecord& r, std::uint64_t version, Live& live);
  void step_transfer(const MigrationRecord& r, std::uint64_t version, Live& live);
  void step_verify(const MigrationRecord& r, std::uint64_t version, Live& live);
  void step_update(const MigrationRecord& r, std::uint64_t version, Live& live);
  void step_cleanup(const MigrationRecord& r, std::uint64_t version, Live& live);
  void step_rollback(const MigrationRecord& r, std::uint64_t version, Live& live);

  // Record writes (compare-and-set on `version`); clear live.busy when done.
  void write(MigrationRecord r, std::uint64_t version, const std::string& why);
  void advance(MigrationRecord r, std::uint64_t version, MigrationStage next);
  void roll_back(MigrationRecord r, std::uint64_t version, std::string reason);
  void finish(MigrationRecord r, std::uint64_t version, MigrationStage end, std::string error);
  void update_placement(const MigrationRecord& r, const ShardPlacement& p,
                        std::vector<NodeId> replicas, std::vector<NodeId> learners);
  void call_leader(const MigrationRecord& r, ShardAction action,
                   std::function<void(Live&, Result<ShardReport>)> then);
  bool stalled(const Live& live, const MigrationRecord& r) const;

  // metadata_upkeep.cpp: the metadata group's voters follow the members
  // (joiners promoted up to metadata_replicas, leaving and removed members
  // replaced); a drained member that holds nothing is removed; copies that
  // no placement names are dropped (the orphan sweep).
  void upkeep(const ClusterMetadata& view, bool migrations_running);
  void sweep_orphans(const ClusterMetadata& view);
  void balance_leaders(const std::map<NodeId, std::vector<ReplicaStats>>& stats);

  void create(const std::vector<MigrationMove>& moves, std::uint64_t bandwidth, Done done);
  void drain(const NodeId& id, Done done);
  MigrationStatus status_of(const MigrationRecord& r) const;
  Result<std::pair<MigrationRecord, std::uint64_t>> find(const std::string& id) const;

  Node::Impl& node_;
  std::map<std::string, Live> live_;
  std::uint64_t last_step_ms_ = 0;
  std::uint64_t last_upkeep_ms_ = 0;
  std::uint64_t last_sweep_ms_ = 0;
  bool upkeep_busy_ = false;
  bool wake_posted_ = false;
  std::uint64_t last_seq_ = 0;
};

}  // namespace nodenomad::node
