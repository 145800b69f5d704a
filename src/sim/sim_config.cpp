#include "sim/sim_config.hpp"

#include <fmt/format.h>

#include "testing/sim_support.hpp"

namespace nodenomad::sim {
namespace {

using sim_support::pick;
using sim_support::uniform_double;
using sim_support::uniform_u32;
using sim_support::weight_or_off;

void add_network_faults(testing::SimFaultProfile& p, Rng& rng, double drop, double dup,
                        double delay) {
  sim_support::draw_message_faults(p, rng, drop, dup, delay);
  p.client_drop_probability = uniform_double(rng, 0, drop / 2);
  p.max_latency_us = uniform_u32(rng, 1'000, 10'000);
}

void add_disk_latency(testing::SimFaultProfile& p, Rng& rng, std::uint32_t max_us) {
  p.disk_min_latency_us = uniform_u32(rng, 50, max_us / 4);
  p.disk_max_latency_us = uniform_u32(rng, p.disk_min_latency_us, max_us);
}

void add_nemesis(testing::SimFaultProfile& p, Rng& rng, std::uint32_t min_ms, std::uint32_t max_ms) {
  p.nemesis_min_interval_ms = min_ms;
  p.nemesis_max_interval_ms = max_ms;
  p.partition_weight = weight_or_off(rng, 3);
  p.one_way_weight = weight_or_off(rng, 2);
  p.isolate_leader_weight = weight_or_off(rng, 3);
  p.rolling_clog_weight = weight_or_off(rng, 2);
  p.crash_weight = weight_or_off(rng, 4);
  p.transfer_weight = weight_or_off(rng, 2);
  p.skew_weight = weight_or_off(rng, 1);
  p.heal_weight = 2;
}

}  // namespace

}  // namespace nodenomad::sim

namespace nodenomad::testing {

using sim_support::uniform_double;
using sim_support::uniform_u32;

SimFaultProfile SimFaultProfile::calm() { return SimFaultProfile{}; }

SimFaultProfile SimFaultProfile::harsh() {
  SimFaultProfile p;
  p.level = "harsh";
  p.drop_probability = 0.1;
  p.duplicate_probability = 0.05;
  p.long_delay_probability = 0.05;
  p.client_drop_probability = 0.02;
  p.max_latency_us = 8'000;
  p.nemesis_min_interval_ms = 100;
  p.nemesis_max_interval_ms = 800;
  p.partition_weight = 3;
  p.one_way_weight = 2;
  p.isolate_leader_weight = 3;
  p.rolling_clog_weight = 2;
  p.crash_weight = 4;
  p.disk_fault_weight = 1;
  p.transfer_weight = 2;
  p.membership_weight = 1;
  p.skew_weight = 1;
  p.heal_weight = 2;
  p.torn_tail_probability = 0.8;
  p.max_down_nodes = 7;
  p.max_clock_skew = 0.04;
  p.slow_disk_probability = 0.05;
  return p;
}

SimFaultProfile SimFaultProfile::crashy() {
  SimFaultProfile p;
  p.level = "crashy";
  p.drop_probability = 0.02;
  p.nemesis_min_interval_ms = 20;
  p.nemesis_max_interval_ms = 200;
  p.partition_weight = 2;
  p.isolate_leader_weight = 3;
  p.crash_weight = 8;
  p.heal_weight = 1;
  p.fault_min_ms = 50;
  p.fault_max_ms = 500;
  p.down_min_ms = 1;
  p.down_max_ms = 30;
  p.torn_tail_probability = 0.5;
  p.max_down_nodes = 1;
  p.disk_min_latency_us = 5'000;
  p.disk_max_latency_us = 30'000;
  return p;
}

SimFaultProfile SimFaultProfile::draw(Rng& rng) {
  SimFaultProfile p;
  const std::uint64_t dice = rng.uniform(100);
  if (dice < 10) return p;  // calm: latency only
  if (dice < 35) {
    p.level = "mild";
    sim::add_network_faults(p, rng, 0.01, 0.01, 0.01);
    sim::add_nemesis(p, rng, 1'000, 4'000);
    sim::add_disk_latency(p, rng, 2'000);
    p.torn_tail_probability = 0.3;
    p.max_down_nodes = 1;
    p.max_clock_skew = uniform_double(rng, 0, 0.02);
    p.slow_disk_probability = 0.01;
    return p;
  }
  if (dice < 60) {
    p.level = "moderate";
    sim::add_network_faults(p, rng, 0.05, 0.03, 0.03);
    sim::add_nemesis(p, rng, 300, 2'000);
    sim::add_disk_latency(p, rng, 5'000);
    p.disk_fault_weight = rng.chance(0.7) ? 1 : 0;
    p.membership_weight = rng.chance(0.6) ? 1 : 0;
    p.torn_tail_probability = 0.5;
    p.max_down_nodes = 2;
    p.max_clock_skew = uniform_double(rng, 0, 0.04);
    p.slow_disk_probability = 0.02;
    return p;
  }
  if (dice < 85) {
    p = harsh();
    sim::add_network_faults(p, rng, 0.15, 0.05, 0.1);
    sim::add_nemesis(p, rng, 100, 800);
    sim::add_disk_latency(p, rng, 20'000);
    p.disk_fault_weight = rng.chance(0.8) ? 1 : 0;
    p.membership_weight = rng.chance(0.6) ? 1 : 0;
    p.max_down_nodes = uniform_u32(rng, 1, 7);
    p.down_min_ms = uniform_u32(rng, 1, 50);
    p.max_clock_skew = uniform_double(rng, 0, 0.04);
    return p;
  }
  // Crashy: short, frequent crashes during long fsyncs, which is where a
  // durability mistake shows.
  p = crashy();
  p.disk_fault_weight = rng.chance(0.5) ? 1 : 0;
  p.transfer_weight = rng.chance(0.5) ? 1 : 0;
  p.max_down_nodes = uniform_u32(rng, 1, 2);
  p.torn_tail_probability = uniform_double(rng, 0, 1);
  return p;
}

std::string SimFaultProfile::describe() const {
  std::string out = sim_support::describe_network(*this);
  if (client_drop_probability > 0) out += fmt::format(" client_drop={:.3f}", client_drop_probability);
  if (nemesis_max_interval_ms > 0) {
    out += fmt::format(
        " nemesis={}..{}ms [partition {} one_way {} isolate {} clog {} crash {} disk {} "
        "transfer {} membership {} skew {} heal {}] max_down={} torn={:.2f}",
        nemesis_min_interval_ms, nemesis_max_interval_ms, partition_weight, one_way_weight,
        isolate_leader_weight, rolling_clog_weight, crash_weight, disk_fault_weight,
        transfer_weight, membership_weight, skew_weight, heal_weight, max_down_nodes,
        torn_tail_probability);
  }
  if (rejoin_weight > 0) out += fmt::format(" rejoin={}", rejoin_weight);
  return out + sim_support::describe_clock_and_disks(*this);
}

}  // namespace nodenomad::testing

namespace nodenomad::sim {

RaftConfig draw_raft_config(Rng& rng) {
  RaftConfig c;
  c.election_timeout_ticks = 10;
  c.heartbeat_interval_ticks = uniform_u32(rng, 1, 3);
  c.pre_vote = rng.chance(0.85);
  c.check_quorum = rng.chance(0.85);
  c.read_mode = c.check_quorum && rng.chance(0.4) ? ReadMode::kLease : ReadMode::kReadIndex;
  c.lease_drift_ticks = 2;
  c.max_append_bytes = pick<std::uint64_t>(rng, {64, 1024, 1u << 20});
  c.max_inflight_messages = pick<std::uint32_t>(rng, {1, 4, 256});
  c.max_inflight_bytes = pick<std::uint64_t>(rng, {512, 64u << 10, 32u << 20});
  // A quarter of the voters' window, as by default: drawn from nothing new,
  // so every seed keeps the rest of its draws.
  c.max_learner_inflight_bytes = std::max<std::uint64_t>(c.max_inflight_bytes / 4, 1);
  c.max_uncommitted_bytes = pick<std::uint64_t>(rng, {1024, 64u << 10, 64u << 20});
  c.max_apply_bytes_per_ready = pick<std::uint64_t>(rng, {64, 64u << 20});
  c.snapshot_chunk_bytes = pick<std::uint64_t>(rng, {64, 700, 1u << 20});
  c.max_snapshot_chunks_in_flight = uniform_u32(rng, 1, 4);
  return c;
}

std::string describe_raft_config(const RaftConfig& c) {
  return fmt::format(
      "election={} heartbeat={} pre_vote={} check_quorum={} read={} append={}B inflight={}/{}B "
      "learner_inflight={}B uncommitted={}B apply={}B chunk={}B x{}",
      c.election_timeout_ticks, c.heartbeat_interval_ticks, c.pre_vote, c.check_quorum,
      c.read_mode == ReadMode::kLease ? "lease" : "read_index", c.max_append_bytes,
      c.max_inflight_messages, c.max_inflight_bytes, c.max_learner_inflight_bytes,
      c.max_uncommitted_bytes,
      c.max_apply_bytes_per_ready, c.snapshot_chunk_bytes, c.max_snapshot_chunks_in_flight);
}

SimNodeConfig draw_node_config(Rng& rng, const RaftConfig& raft,
                               const testing::SimFaultProfile& profile) {
  SimNodeConfig n;
  n.raft = raft;
  n.log_store.segment_bytes = pick<std::uint64_t>(rng, {512, 16u << 10, 64u << 20});
  // Writing each record to the OS at once (1 byte) lets a crash tear it.
  n.log_store.max_unwritten_bytes = pick<std::uint64_t>(rng, {1, 4096, 8u << 20});
  n.compact_every_entries = pick<std::uint64_t>(rng, {16, 64, 256});
  n.compact_keep_entries = pick<std::uint64_t>(rng, {0, 4, 32});
  n.disk_min_latency_us = profile.disk_min_latency_us;
  n.disk_max_latency_us = profile.disk_max_latency_us;
  n.slow_disk_probability = profile.slow_disk_probability;
  n.slow_disk_latency_us = profile.slow_disk_latency_us;
  return n;
}

}  // namespace nodenomad::sim
