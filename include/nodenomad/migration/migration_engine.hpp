// MigrationEngine: the programmatic face of shard migration for a host that
// embeds a Node (docs/migration.md). It plans from the node's view of the
// cluster, and executes and controls operations through the metadata
// group's leader, wherever that is; the HTTP API and nodenomadctl use the
// same calls through ClientApi.
//
//   MigrationEngine engine(node);
//   auto plan = engine.create_migration_plan({ShardId(3), ShardId(7)},
//                                            NodeId("node-1"), NodeId("node-4"));
//   auto ids = engine.execute_migration_plan(*plan).get();   // operation ids
//   auto status = engine.get_operation_status(ids->front()).get();
//
// Errors: as ClientApi's migration calls (client_api.hpp). A plan is advice:
// execute_migration_plan answers kVersionMismatch when a shard's epoch moved
// since the plan was made (plan again), and kInvalidArgument naming the rule
// when a move no longer passes the planner's checks.
//
// Thread safety: every method may be called from any thread; callbacks run
// on the node's loop. The Node must outlive the engine.
#pragma once

#include <cstdint>
#include <functional>
#include <future>
#include <string>
#include <vector>

#include "nodenomad/migration/migration_plan.hpp"
#include "nodenomad/migration/migration_status.hpp"
#include "nodenomad/node.hpp"

namespace nodenomad {

class MigrationEngine {
 public:
  explicit MigrationEngine(Node& node) : node_(node) {}

  // Validates the request against this node's view (see migration_plan.hpp).
  Result<MigrationPlan> create_migration_plan(const std::vector<ShardId>& shards,
                                              const NodeId& source, const NodeId& target,
                                              const PlanLimits& limits = {}) const;
  // The moves that bring the placement to the ring's (a dry run of rebalance()).
  Result<MigrationPlan> plan_rebalance(const PlanLimits& limits = {}) const;

  // Starts one operation per move; answers their ids.
  void execute_migration_plan(const MigrationPlan& plan, std::uint64_t bandwidth_bytes_per_s,
                              std::function<void(Result<std::vector<std::string>>)> done);
  std::future<Result<std::vector<std::string>>> execute_migration_plan(
      const MigrationPlan& plan, std::uint64_t bandwidth_bytes_per_s = 0);

  std::future<Result<MigrationStatus>> get_operation_status(const std::string& id);
  std::future<Result<std::vector<MigrationStatus>>> list_operations();
  std::future<Result<MigrationStatus>> cancel(const std::string& id);
  std::future<Result<MigrationStatus>> pause(const std::string& id);
  std::future<Result<MigrationStatus>> resume(const std::string& id);
  std::future<Result<MigrationStatus>> set_bandwidth(const std::string& id,
                                                     std::uint64_t bytes_per_s);
  std::future<Result<MigrationBatch>> rebalance();
  std::future<Result<MigrationBatch>> drain(const NodeId& id);

 private:
  std::future<Result<MigrationStatus>> control(const std::string& id, MigrationControl c,
                                               std::uint64_t bandwidth);
  Node& node_;
};

}  // namespace nodenomad
