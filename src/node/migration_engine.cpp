// MigrationEngine: plans from the node's view, runs everything else through
// the node's migration calls (which reach the metadata leader).
#include "nodenomad/migration/migration_engine.hpp"

#include "node/node_impl.hpp"

namespace nodenomad {

namespace {

template <typename T>
std::pair<std::function<void(Result<T>)>, std::future<Result<T>>> promise_callback() {
  auto promise = std::make_shared<std::promise<Result<T>>>();
  std::future<Result<T>> future = promise->get_future();
  return {[promise](Result<T> r) { promise->set_value(std::move(r)); }, std::move(future)};
}

}  // namespace

Result<MigrationPlan> MigrationEngine::create_migration_plan(const std::vector<ShardId>& shards,
                                                            const NodeId& source,
                                                            const NodeId& target,
                                                            const PlanLimits& limits) const {
  return nodenomad::create_migration_plan(*node_.metadata(), shards, source, target, limits);
}

Result<MigrationPlan> MigrationEngine::plan_rebalance(const PlanLimits& limits) const {
  return nodenomad::plan_rebalance(*node_.metadata(), limits);
}

void MigrationEngine::execute_migration_plan(
    const MigrationPlan& plan, std::uint64_t bandwidth_bytes_per_s,
    std::function<void(Result<std::vector<std::string>>)> done) {
  node::AdminCall call;
  call.action = node::AdminAction::kExecute;
  call.bandwidth_bytes_per_s = bandwidth_bytes_per_s;
  for (const MigrationMove& m : plan.moves) {
    call.shards.push_back(m.shard);
    call.sources.push_back(m.source);
    call.targets.push_back(m.target);
    call.epochs.push_back(m.expected_epoch.value());
  }
  node_.run_migration_call(std::move(call), [done = std::move(done)](Result<std::string> r) {
    if (!r.is_ok()) return done(r.status());
    Result<MigrationBatch> batch = node::decode_migration_batch(*r);
    if (!batch.is_ok()) return done(batch.status());
    done(std::move(batch->operations));
  });
}

std::future<Result<std::vector<std::string>>> MigrationEngine::execute_migration_plan(
    const MigrationPlan& plan, std::uint64_t bandwidth_bytes_per_s) {
  auto [callback, future] = promise_callback<std::vector<std::string>>();
  execute_migration_plan(plan, bandwidth_bytes_per_s, std::move(callback));
  return std::move(future);
}

std::future<Result<MigrationStatus>> MigrationEngine::get_operation_status(const std::string& id) {
  auto [callback, future] = promise_callback<MigrationStatus>();
  node_.get_migration(id, std::move(callback));
  return std::move(future);
}

std::future<Result<std::vector<MigrationStatus>>> MigrationEngine::list_operations() {
  auto [callback, future] = promise_callback<std::vector<MigrationStatus>>();
  node_.list_migrations(std::move(callback));
  return std::move(future);
}

std::future<Result<MigrationStatus>> MigrationEngine::control(const std::string& id,
                                                              MigrationControl c,
                                                              std::uint64_t bandwidth) {
  auto [callback, future] = promise_callback<MigrationStatus>();
  node_.control_migration(id, c, bandwidth, std::move(callback));
  return std::move(future);
}

std::future<Result<MigrationStatus>> MigrationEngine::cancel(const std::string& id) {
  return control(id, MigrationControl::kCancel, 0);
}
std::future<Result<MigrationStatus>> MigrationEngine::pause(const std::string& id) {
  return control(id, MigrationControl::kPause, 0);
}
std::future<Result<MigrationStatus>> MigrationEngine::resume(const std::string& id) {
  return control(id, MigrationControl::kResume, 0);
}
std::future<Result<MigrationStatus>> MigrationEngine::set_bandwidth(const std::string& id,
                                                                    std::uint64_t bytes_per_s) {
  return control(id, MigrationControl::kSetBandwidth, bytes_per_s);
}

std::future<Result<MigrationBatch>> MigrationEngine::rebalance() {
  auto [callback, future] = promise_callback<MigrationBatch>();
  node_.rebalance(std::move(callback));
  return std::move(future);
}

std::future<Result<MigrationBatch>> MigrationEngine::drain(const NodeId& id) {
  auto [callback, future] = promise_callback<MigrationBatch>();
  node_.drain_node(id, std::move(callback));
  return std::move(future);
}

}  // namespace nodenomad
