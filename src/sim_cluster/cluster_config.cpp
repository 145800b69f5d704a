#include "sim_cluster/cluster_config.hpp"

#include <fmt/format.h>

#include "testing/sim_support.hpp"

namespace nodenomad::sim_cluster {
namespace {

using sim_support::pick;
using sim_support::uniform_double;
using sim_support::uniform_u32;
using sim_support::weight_or_off;

void add_network_faults(testing::ClusterFaultProfile& p, Rng& rng, double drop, double dup,
                        double delay) {
  sim_support::draw_message_faults(p, rng, drop, dup, delay);
  p.max_latency_us = uniform_u32(rng, 1'000, 8'000);
}

void add_nemesis(testing::ClusterFaultProfile& p, Rng& rng, std::uint32_t min_ms,
                 std::uint32_t max_ms) {
  p.nemesis_min_interval_ms = min_ms;
  p.nemesis_max_interval_ms = max_ms;
  p.partition_weight = weight_or_off(rng, 3);
  p.one_way_weight = weight_or_off(rng, 2);
  p.isolate_weight = weight_or_off(rng, 3);
  p.crash_weight = weight_or_off(rng, 4);
  p.disk_fault_weight = weight_or_off(rng, 1);
  p.heal_weight = 2;
}

}  // namespace

NodeId sim_node_id(std::uint32_t index) { return NodeId(fmt::format("node-{}", index + 1)); }

Scenario draw_scenario(const testing::ClusterSimOptions& options, Rng& rng) {
  Scenario s;
  s.joiners = options.joiners != 0 ? options.joiners : uniform_u32(rng, 1, 2);
  s.shard_count = options.shard_count != 0 ? options.shard_count : uniform_u32(rng, 4, 10);
  s.compact_every_entries = pick<std::uint64_t>(rng, {16, 48, 128});
  s.migration_chunk_bytes = pick<std::uint64_t>(rng, {4096, 8192, 16384});
  s.max_concurrent_migrations = uniform_u32(rng, 1, 4);
  s.max_node_migrations = uniform_u32(rng, 1, 3);
  s.migration_timeout_ms = uniform_u32(rng, 3'000, 8'000);
  s.migration_bandwidth_bytes_per_s = rng.chance(0.5) ? uniform_u32(rng, 4'000, 32'000) : 0;
  s.rebalance_on_join = rng.chance(0.6);
  s.read_mode = rng.chance(0.5) ? ReadMode::kLease : ReadMode::kReadIndex;
  std::uint64_t at = uniform_u32(rng, 300, 2'500);
  for (std::uint32_t j = 0; j < s.joiners; ++j) {
    s.join_at_ms.push_back(at);
    at += uniform_u32(rng, 500, 5'000);
  }
  s.key_count = uniform_u32(rng, 8, 40);
  s.large_value_bytes = uniform_u32(rng, 500, 3'000);
  s.large_value_probability = uniform_double(rng, 0.1, 0.5);
  s.lease_read_probability = s.read_mode == ReadMode::kLease ? uniform_double(rng, 0, 0.6) : 0;
  if (options.kills) {
    s.kills = *options.kills;
  } else {
    // 15 consecutive seeds cover every role at every stage.
    testing::StageKill first;
    first.role = static_cast<testing::StageKillRole>(options.seed % 3);
    first.stage = static_cast<MigrationStage>(1 + (options.seed / 3) % 5);
    first.down_ms = uniform_u32(rng, 200, 3'000);
    s.kills.push_back(first);
    const std::uint64_t more = rng.uniform(3);  // 0 to 2 more, drawn at random
    for (std::uint64_t k = 0; k < more; ++k) {
      testing::StageKill extra;
      extra.role = static_cast<testing::StageKillRole>(rng.uniform(3));
      extra.stage = static_cast<MigrationStage>(1 + rng.uniform(5));
      extra.down_ms = uniform_u32(rng, 100, 3'000);
      s.kills.push_back(extra);
    }
  }
  return s;
}

std::string describe_scenario(const Scenario& s) {
  std::string kills;
  for (const testing::StageKill& k : s.kills) {
    kills += fmt::format(" {}@{}+{}ms", testing::stage_kill_role_name(k.role),
                         migration_stage_name(k.stage), k.down_ms);
  }
  return fmt::format(
      "nodes={}+{} shards={} tick={}ms compact={} chunk={}B migrations<={} per_node<={} "
      "timeout={}ms bandwidth={}B/s rebalance_on_join={} read={} keys={} large={}B@{:.2f} "
      "lease_reads={:.2f} kills:{}",
      kFounders, s.joiners, s.shard_count, s.tick_ms, s.compact_every_entries,
      s.migration_chunk_bytes, s.max_concurrent_migrations, s.max_node_migrations,
      s.migration_timeout_ms, s.migration_bandwidth_bytes_per_s, s.rebalance_on_join,
      s.read_mode == ReadMode::kLease ? "lease" : "read_index", s.key_count, s.large_value_bytes,
      s.large_value_probability, s.lease_read_probability, kills.empty() ? " none" : kills);
}

NodeOptions node_options(const Scenario& s, std::uint32_t index, std::uint64_t seed) {
  NodeOptions o;
  o.id = sim_node_id(index);
  for (std::uint32_t f = 0; f < kFounders; ++f) {
    o.initial_members.push_back({sim_node_id(f), fmt::format("sim:{}", f + 1)});
  }
  o.join = index >= kFounders;
  o.advertise_address = fmt::format("sim:{}", index + 1);
  o.data_dir = fmt::format("/{}", o.id.str());
  o.shard_count = s.shard_count;
  o.tick_ms = s.tick_ms;
  o.raft.read_mode = s.read_mode;
  o.request_timeout_ms = s.request_timeout_ms;
  o.compact_every_entries = s.compact_every_entries;
  o.migration_chunk_bytes = s.migration_chunk_bytes;
  o.max_concurrent_migrations = s.max_concurrent_migrations;
  o.max_node_migrations = s.max_node_migrations;
  o.migration_timeout_ms = s.migration_timeout_ms;
  o.migration_bandwidth_bytes_per_s = s.migration_bandwidth_bytes_per_s;
  o.rebalance_on_join = s.rebalance_on_join;
  o.seed = seed | 1;
  return o;
}

}  // namespace nodenomad::sim_cluster

namespace nodenomad::testing {

using sim_support::uniform_double;
using sim_support::uniform_u32;

std::string_view stage_kill_role_name(StageKillRole role) {
  switch (role) {
    case StageKillRole::kSource: return "source";
    case StageKillRole::kTarget: return "target";
    case StageKillRole::kCoordinator: return "coordinator";
  }
  return "unknown";
}

ClusterFaultProfile ClusterFaultProfile::calm() { return ClusterFaultProfile{}; }

ClusterFaultProfile ClusterFaultProfile::harsh() {
  ClusterFaultProfile p;
  p.level = "harsh";
  p.max_latency_us = 5'000;
  p.drop_probability = 0.05;
  p.duplicate_probability = 0.03;
  p.long_delay_probability = 0.03;
  p.nemesis_min_interval_ms = 300;
  p.nemesis_max_interval_ms = 1'500;
  p.partition_weight = 3;
  p.one_way_weight = 2;
  p.isolate_weight = 3;
  p.crash_weight = 4;
  p.disk_fault_weight = 1;
  p.heal_weight = 2;
  p.torn_tail_probability = 0.5;
  p.max_down_nodes = 2;
  p.max_clock_skew = 0.04;
  p.disk_max_latency_us = 5'000;
  p.slow_disk_probability = 0.02;
  return p;
}

ClusterFaultProfile ClusterFaultProfile::crashy() {
  ClusterFaultProfile p;
  p.level = "crashy";
  p.drop_probability = 0.01;
  p.nemesis_min_interval_ms = 100;
  p.nemesis_max_interval_ms = 700;
  p.crash_weight = 10;
  p.isolate_weight = 1;
  p.disk_fault_weight = 1;
  p.heal_weight = 1;
  p.down_min_ms = 30;
  p.down_max_ms = 800;
  p.fault_max_ms = 1'000;
  p.torn_tail_probability = 0.5;
  p.max_down_nodes = 2;
  p.disk_min_latency_us = 1'000;
  p.disk_max_latency_us = 8'000;
  return p;
}

ClusterFaultProfile ClusterFaultProfile::draw(Rng& rng) {
  ClusterFaultProfile p;
  const std::uint64_t roll = rng.uniform(100);
  if (roll < 10) {
    p.level = "calm";
    p.disk_max_latency_us = uniform_u32(rng, 200, 1'000);
    return p;
  }
  if (roll < 20) {
    p = crashy();
    p.down_max_ms = uniform_u32(rng, 100, 1'500);
    p.max_down_nodes = uniform_u32(rng, 1, 2);
    p.torn_tail_probability = uniform_double(rng, 0, 1);
    return p;
  }
  if (roll < 45) {
    p.level = "mild";
    sim_cluster::add_network_faults(p, rng, 0.01, 0.01, 0.01);
    sim_cluster::add_nemesis(p, rng, 1'000, 4'000);
    p.max_down_nodes = 1;
    p.disk_max_latency_us = uniform_u32(rng, 500, 2'000);
  } else if (roll < 72) {
    p.level = "moderate";
    sim_cluster::add_network_faults(p, rng, 0.04, 0.03, 0.03);
    sim_cluster::add_nemesis(p, rng, 400, 2'500);
    p.max_down_nodes = 1;
    p.torn_tail_probability = uniform_double(rng, 0, 0.5);
    p.disk_max_latency_us = uniform_u32(rng, 1'000, 5'000);
    p.slow_disk_probability = uniform_double(rng, 0, 0.02);
    p.max_clock_skew = rng.chance(0.5) ? uniform_double(rng, 0, 0.03) : 0;
  } else {
    p.level = "harsh";
    sim_cluster::add_network_faults(p, rng, 0.10, 0.05, 0.08);
    sim_cluster::add_nemesis(p, rng, 200, 1'500);
    p.max_down_nodes = 2;
    p.torn_tail_probability = uniform_double(rng, 0, 1);
    p.disk_max_latency_us = uniform_u32(rng, 1'000, 10'000);
    p.slow_disk_probability = uniform_double(rng, 0, 0.05);
    p.max_clock_skew = uniform_double(rng, 0, 0.04);
  }
  p.fault_max_ms = uniform_u32(rng, 500, 4'000);
  p.down_max_ms = uniform_u32(rng, 300, 4'000);
  return p;
}

std::string ClusterFaultProfile::describe() const {
  std::string out = sim_support::describe_network(*this);
  if (nemesis_max_interval_ms > 0) {
    out += fmt::format(
        " nemesis={}..{}ms [partition {} one_way {} isolate {} crash {} disk {} heal {}] "
        "faults<={}ms down<={}ms max_down={} torn={:.2f}",
        nemesis_min_interval_ms, nemesis_max_interval_ms, partition_weight, one_way_weight,
        isolate_weight, crash_weight, disk_fault_weight, heal_weight, fault_max_ms, down_max_ms,
        max_down_nodes, torn_tail_probability);
  }
  out += sim_support::describe_clock_and_disks(*this);
  if (diverge_probability > 0) out += fmt::format(" diverge={:.2f}", diverge_probability);
  return out;
}

}  // namespace nodenomad::testing
