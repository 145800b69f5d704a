// What one whole-node simulation run is made of, drawn from its seed: the
// cluster's shape, the Nodes' knobs (small chunks, small compaction
// intervals and bandwidth limits, so that learners need snapshots in
// several chunks and stages last long enough to be hit), the clients' key
// space, and the stage kills.
//
// Thread safety: plain values and pure functions of an Rng.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "nodenomad/node.hpp"
#include "nodenomad/testing/cluster_simulator.hpp"

namespace nodenomad::sim_cluster {

inline constexpr std::uint32_t kFounders = 3;

struct Scenario {
  std::uint32_t joiners = 1;
  std::uint32_t shard_count = 8;
  std::uint32_t tick_ms = 25;
  std::uint64_t request_timeout_ms = 3'000;
  std::uint64_t compact_every_entries = 64;
  std::uint64_t migration_chunk_bytes = 4096;
  std::uint32_t max_concurrent_migrations = 3;
  std::uint32_t max_node_migrations = 2;
  std::uint64_t migration_timeout_ms = 6'000;
  std::uint64_t migration_bandwidth_bytes_per_s = 0;  // per node; 0: none
  bool rebalance_on_join = true;
  ReadMode read_mode = ReadMode::kLease;
  // Join times of the joiners (ms into the run).
  std::vector<std::uint64_t> join_at_ms;
  // Clients' keys "k0".."k<n-1>"; a value is small or, sometimes, large.
  std::uint32_t key_count = 24;
  std::uint32_t large_value_bytes = 1'500;
  double large_value_probability = 0.3;
  // Lease reads in the client mix (the rest are linearizable ReadIndex reads).
  double lease_read_probability = 0.3;
  // The driver's migration calls: one every [min, max] ms.
  std::uint32_t admin_min_interval_ms = 400;
  std::uint32_t admin_max_interval_ms = 2'000;
  std::vector<testing::StageKill> kills;
};

Scenario draw_scenario(const testing::ClusterSimOptions& options, Rng& rng);
std::string describe_scenario(const Scenario& scenario);

// The options of node `index` (0-based; founders first) for one incarnation.
// The loops, transport, file system and clock are left for the caller.
NodeOptions node_options(const Scenario& scenario, std::uint32_t index, std::uint64_t seed);
NodeId sim_node_id(std::uint32_t index);

}  // namespace nodenomad::sim_cluster
