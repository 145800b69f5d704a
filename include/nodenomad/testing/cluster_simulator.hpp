// The deterministic simulation of whole Nodes (nodenomad/node.hpp) running
// shard migrations under faults (docs/simulation.md, "Whole nodes and
// migrations"). Where simulator.hpp runs one Raft group, this runs the real
// Node: the metadata group, a Raft group per shard, routing, the client API
// and the MigrationEngine, all on one thread and one simulated clock.
//
//   ClusterSimOptions options;
//   options.seed = 42;
//   ClusterSimResult result = run_cluster_simulation(options);
//   if (!result.passed) std::puts(result.report().c_str());  // seed + trace
//
// What a run does: 3 founders bootstrap a cluster; 1 or 2 nodes join it
// (add_node, then a rebalance on join or asked for); a driver creates
// migrations, drains a node, cancels, pauses and resumes operations at random
// times; clients put, get, remove and compare-and-set keys through random
// live nodes. Meanwhile the network drops, delays, duplicates and partitions,
// nodes crash (losing unsynced writes) and restart, fsyncs fail, and the
// source, the target or the coordinator of an operation is killed when the
// operation enters a chosen stage (StageKill). Then every fault heals and the
// cluster must come to rest: every node up, no migration running, every
// group caught up.
//
// What a run checks: after every step, on every node's applied metadata:
// one owner set per shard per epoch, well-formed placements with R voters,
// a learner only while its operation runs, epochs and operation records that
// only move forward, and every operation that ended `done` with its target a
// voter and its source out. At rest: every voter of every shard hosts the
// shard and all its replicas have the same digest (a migrated shard's digest
// equals its source's), every node holds the same metadata, and the client
// history is linearizable (nodenomad/testing/linearizability.hpp).
//
// Determinism: a run is a pure function of its options. The Nodes run with
// NodeOptions::loop, background_loop, transport, file_system, clock and seed
// all given by the simulation, so they start no thread and read no real
// clock; every random choice comes from one Rng seeded by options.seed. The
// trace hash covers every scheduled task and every message's bytes, so two
// runs of one seed agree on it.
//
// Thread safety: run_cluster_simulation() keeps no global state of its own;
// the library's log sink is process-wide (quiet it with set_log_sink).
// An NN_ASSERT in the code under test aborts the process: print the seed
// first (the soak runs each seed in a child process).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/migration/migration_status.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/testing/linearizability.hpp"

namespace nodenomad::testing {

// Who a StageKill crashes: the operation's source, its target, or the
// metadata group's leader (the coordinator that drives it).
enum class StageKillRole : std::uint8_t { kSource = 0, kTarget = 1, kCoordinator = 2 };
std::string_view stage_kill_role_name(StageKillRole role);

// Crash `role` of the first operation seen entering `stage` (kPrepare ..
// kCleanup, not rolling back), and restart it `down_ms` later. Each kill
// fires once per run; a victim that is down already waits for the next
// operation.
struct StageKill {
  StageKillRole role = StageKillRole::kSource;
  MigrationStage stage = MigrationStage::kTransfer;
  std::uint32_t down_ms = 1'000;
};

// How hostile one run is; draw() picks a level, then each knob within it.
struct ClusterFaultProfile {
  std::string level = "calm";  // calm, mild, moderate, harsh or crashy (for reports)

  // --- node-to-node network ---
  std::uint32_t min_latency_us = 200;
  std::uint32_t max_latency_us = 2'000;
  double drop_probability = 0;
  double duplicate_probability = 0;
  // A message delayed by up to long_delay_max_us more (reordering).
  double long_delay_probability = 0;
  std::uint32_t long_delay_max_us = 200'000;

  // --- the nemesis: one action every [min, max] ms; 0 = none ---
  std::uint32_t nemesis_min_interval_ms = 0;
  std::uint32_t nemesis_max_interval_ms = 0;
  std::uint32_t partition_weight = 0;   // a random two-sided split
  std::uint32_t one_way_weight = 0;     // random one-way link cuts
  std::uint32_t isolate_weight = 0;     // one node cut off from all
  std::uint32_t crash_weight = 0;       // crash a node, restart it later
  std::uint32_t disk_fault_weight = 0;  // a node's next fsync fails (it fail-stops)
  std::uint32_t heal_weight = 0;        // heal the network at once
  std::uint32_t fault_min_ms = 200;     // how long a partition lasts
  std::uint32_t fault_max_ms = 3'000;
  std::uint32_t down_min_ms = 100;      // how long a crashed node stays down
  std::uint32_t down_max_ms = 3'000;
  double torn_tail_probability = 0;     // a crash keeps a prefix of unsynced tails
  std::uint32_t max_down_nodes = 1;     // nemesis crashes (stage kills come on top)

  // --- clocks: each node's timers (its ticks) run at (1 + d) times the
  // simulated rate, |d| <= this; at most 0.04, which keeps lease reads
  // within their drift bound (docs/simulation.md, "Clock skew bound"). ---
  double max_clock_skew = 0;

  // --- disks: the latency of each background task (an fsync, a digest) ---
  std::uint32_t disk_min_latency_us = 100;
  std::uint32_t disk_max_latency_us = 1'000;
  double slow_disk_probability = 0;
  std::uint32_t slow_disk_latency_us = 30'000;

  // --- silent divergence: the chance that a migration target's copy of a
  // shard loses one digest bucket's keys just before a Verify digest (any
  // round of the copy's first verify session), which Verify must find and
  // repair before promoting it; 0 = never. Never drawn:
  // ClusterSimOptions::diverge_probability sets it. ---
  double diverge_probability = 0;

  static ClusterFaultProfile calm();
  static ClusterFaultProfile harsh();
  // Frequent short crashes, little else.
  static ClusterFaultProfile crashy();
  static ClusterFaultProfile draw(Rng& rng);
  std::string describe() const;
};

// Deliberate mistakes, for tests that prove the checks catch what they
// should. Never set outside such tests.
enum class ClusterSimBug : std::uint8_t {
  kNone = 0,
  // Clients read with ReadConsistency::kStale (any replica's local state, a
  // lagging follower's or a migration target's too) and record the answers
  // as linearizable reads.
  kStaleReads = 1,
};

struct ClusterSimOptions {
  std::uint64_t seed = 1;
  // Nodes that join the 3 founders: 1 or 2; 0 = drawn from the seed.
  std::uint32_t joiners = 0;
  // 0 = drawn from the seed (4 to 10).
  std::uint32_t shard_count = 0;
  // The faulty phase, then at most settle_ms to come to rest.
  std::uint64_t duration_ms = 15'000;
  std::uint64_t settle_ms = 60'000;
  std::uint32_t client_count = 4;
  // None: drawn from the seed.
  std::optional<ClusterFaultProfile> faults;
  // None: one kill from the seed (role = seed % 3, stage = (seed / 3) % 5,
  // so 15 consecutive seeds cover every role at every stage), sometimes a
  // second one drawn at random.
  std::optional<std::vector<StageKill>> kills;
  // Whether the network may duplicate node-to-node requests (a forwarded
  // client call), not only Raft messages and responses. A serving node
  // drops a request id it served lately (docs/simulation.md, "Findings").
  bool duplicate_requests = true;
  // The driver's migration calls (create, rebalance, drain, cancel, pause,
  // resume); joins and their rebalance happen regardless.
  bool random_migrations = true;
  // Silent divergence of migration targets at Verify, on top of the faults
  // (ClusterFaultProfile::diverge_probability); 0 = the profile's own.
  double diverge_probability = 0;
  bool check_linearizability = true;
  std::uint64_t checker_max_states_per_key = 200'000;
  ClusterSimBug bug = ClusterSimBug::kNone;
  // A run that takes more scheduler steps fails as an event storm; 0 = 100
  // per simulated millisecond of duration_ms + settle_ms.
  std::uint64_t max_total_steps = 0;
  std::size_t trace_tail_events = 60;
  // Every trace line as it happens (debugging a seed).
  std::function<void(std::string_view line)> on_event;
  // Debugging a seed: every Raft message of this group (0 = the metadata
  // group, s + 1 = shard s) goes to the trace too. Changes no event (the
  // trace hash, which covers the trace, changes).
  std::optional<std::uint64_t> trace_raft_group;
};

struct ClusterSimStats {
  std::uint64_t steps = 0;  // scheduler tasks run
  std::uint64_t simulated_ms = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_dropped = 0;
  std::uint64_t messages_duplicated = 0;
  std::uint64_t crashes = 0;  // nemesis crashes, stage kills and fail-stops
  std::uint64_t stage_kills = 0;
  std::uint64_t fail_stops = 0;
  std::uint64_t disk_faults = 0;
  std::uint64_t partitions = 0;
  std::uint64_t admin_calls = 0;
  std::uint64_t migrations = 0;  // operations recorded
  std::uint64_t migrations_done = 0;
  std::uint64_t migrations_failed = 0;
  std::uint64_t migrations_cancelled = 0;
  std::uint64_t views_checked = 0;   // metadata views run through the invariants
  std::uint64_t shards_compared = 0; // shards whose replicas' digests were compared
  std::uint64_t ops_ok = 0;
  std::uint64_t ops_fail = 0;
  std::uint64_t ops_unknown = 0;
  std::uint64_t checker_states = 0;
  std::uint64_t settle_ms = 0;  // how long coming to rest took
  // Requests a new leader sent on before their retry timer (the nodes up at
  // the end; a node's counters restart with it).
  std::uint64_t requests_resumed_on_leader = 0;
  // Silent divergence (ClusterFaultProfile::diverge_probability): targets
  // made to diverge, the bucket mismatches Verify counted in the operation
  // records, and the moves done after at least one repair.
  std::uint64_t divergences = 0;
  std::uint64_t verify_mismatches = 0;
  std::uint64_t migrations_done_after_repair = 0;
};

struct ClusterSimResult {
  std::uint64_t seed = 0;
  std::uint32_t node_count = 0;
  std::uint32_t shard_count = 0;
  bool passed = false;
  std::string failure;  // empty when passed
  Verdict verdict = Verdict::kOk;
  std::uint64_t trace_hash = 0;
  std::vector<std::string> trace_tail;
  std::string fault_summary;
  std::string scenario_summary;  // node options, kills planned
  // The stage kills that fired, e.g. "coordinator@verify m3-s2 node-1".
  std::vector<std::string> kills_fired;
  ClusterSimStats stats;

  std::string to_json() const;
  std::string report() const;
};

ClusterSimResult run_cluster_simulation(const ClusterSimOptions& options);

}  // namespace nodenomad::testing
