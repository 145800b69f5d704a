// What the real-process migration tests (migration_test.cpp) read from a
// running cluster and check: preloaded data that makes a shard's transfer
// take measurable time, the operations of GET /v1/migrations, the final
// placement, and the shard groups each node actually hosts (GET /metrics).
//
// Catch2 assertions: call from the test's main thread only (preload()
// starts its own threads and joins them before asserting).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster/json_reader.hpp"
#include "cluster/process_cluster.hpp"

namespace nodenomad::process_testing {

// Keys and values written before the load, outside the workload's keys.
// Each value is unique to the seed and the key, padded to `value_bytes`.
using Preload = std::vector<std::pair<std::string, std::string>>;
Preload make_preload(std::uint64_t seed, std::size_t keys, std::size_t value_bytes);

// Writes every pair through the running nodes with `threads` clients,
// retrying an answer other than 200 until kPreloadTimeout; FAILs naming a
// key that was not written.
void preload(ProcessCluster& cluster, const Preload& data, std::size_t threads);

// Reads every preloaded key back (linearizable GETs through the running
// nodes, retried while no node answers 200 or 404); CHECKs that each still
// holds its value, naming the first few that do not.
void check_preloaded(ProcessCluster& cluster, const Preload& data);

// GET /v1/migrations through a running node, once; nullopt when none
// answered 200 with the list.
std::optional<std::vector<MigrationView>> list_migrations(ProcessCluster& cluster);

// GET /v1/migrations/{id} through a running node, once; nullopt when none
// answered 200 with the operation.
std::optional<MigrationView> get_migration(ProcessCluster& cluster, const std::string& id);

// Polls list_migrations() every `interval` until `wanted` holds of the list;
// FAILs naming `what` and the last list seen after `timeout`.
std::vector<MigrationView> wait_migrations(
    ProcessCluster& cluster, const std::function<bool(const std::vector<MigrationView>&)>& wanted,
    const std::string& what, std::chrono::milliseconds timeout, std::chrono::milliseconds interval);

// "m1-s0 shard 0 node-3->node-4 transfer 1200/434161" per operation, one a line.
std::string describe_migrations(const std::vector<MigrationView>& ops);

// The shard ids of the groups a node hosts, from its GET /metrics text:
// every `nodenomad_raft_term{group="G"}` with G > 0 is shard G - 1 (group 0
// is the metadata group).
std::set<std::uint64_t> hosted_shards_in_metrics(std::string_view metrics);

// The shard ids a node keeps on disk under its DATA_DIR: a Raft log
// directory `wal/raft/g-G` (G > 0, shard G - 1; the harness leaves WAL_DIR
// at its default, DATA_DIR/wal) or a state directory `shards/s-S`. Either
// one left behind counts. A directory that does not exist holds none.
std::set<std::uint64_t> shards_on_disk(const std::string& data_dir);

// The shards the placement gives `node` (as a voter or a learner).
std::set<std::uint64_t> placed_shards(const ClusterView& view, const std::string& node);

// Polls until every running node hosts exactly the shard groups the
// placement gives it, both in memory (GET /metrics against GET /v1/cluster)
// and on disk (shards_on_disk()): no orphan copy left (the coordinator's
// sweep drops those every 10 s) and no placed replica missing. FAILs naming
// each node's difference after `timeout`. Answers how long it took.
std::chrono::milliseconds wait_hosting_matches_placement(ProcessCluster& cluster,
                                                         std::chrono::milliseconds timeout);

}  // namespace nodenomad::process_testing
