// The deterministic whole-cluster simulator: N nodes, each a RaftEngine over
// a FileLogStore and a replicated StorageEngine on its own simulated disk,
// driven by one seeded discrete-event scheduler with a simulated clock, a
// simulated network and simulated clients (docs/simulation.md).
//
//   SimOptions options;
//   options.seed = 42;
//   SimResult result = run_simulation(options);
//   if (!result.passed) std::puts(result.report().c_str());  // seed + trace
//
// What a run does: the nodes boot as one Raft group; clients issue the
// workload's operations (nodenomad/testing/sim_workload.hpp) while the
// fault profile drops, delays, duplicates and reorders messages, partitions
// the network (symmetric, one-way, clogging nodes one by one), crashes nodes
// (losing unsynced writes, sometimes tearing them), fails fsyncs, skews the
// nodes' tick rates, transfers leadership and moves a node between voter and
// learner. Then every fault is healed and the cluster must converge.
//
// What a run checks: the Raft invariants (nodenomad/raft/invariants.hpp)
// after every event; every node's state machine identical once healed; the
// client history linearizable (nodenomad/testing/linearizability.hpp). A
// kUnknown verdict (checker budget exhausted) does not fail a run; it is
// reported in SimResult::verdict. An NN_ASSERT in the code under test still
// aborts the process: the caller prints the seed before running it.
//
// Determinism: a run is a pure function of its options. Everything random
// comes from one Rng seeded by options.seed (forked per component); nothing
// reads a real clock, starts a thread or asks the OS for randomness. The
// trace hash covers every event, so two runs of one seed agree on it.
//
// Ownership: run_simulation() builds everything a run needs (nodes, disks,
// the workload from options.workload) and frees it before returning; the
// SimResult owns copies of everything it reports.
//
// Thread safety: run_simulation() uses no global state of its own and may
// run on several threads at once, each with its own options. The library's
// log sink and level are process-wide; set_log_level(LogLevel::kError)
// keeps routine elections and torn-tail repairs quiet.
//
// Scenarios: a host that wants to act at a chosen moment (crash the leader
// 30 ms after it was elected, restart it later, end the run once a new
// leader is known) sets SimOptions::on_start / on_step and drives the run
// through SimControl below; docs/simulation.md shows an example.
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "nodenomad/raft/raft_config.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/status.hpp"
#include "nodenomad/testing/linearizability.hpp"
#include "nodenomad/testing/sim_workload.hpp"
#include "nodenomad/types.hpp"

namespace nodenomad {
class RaftEngine;  // nodenomad/raft/raft_engine.hpp
}  // namespace nodenomad

namespace nodenomad::testing {

// How hostile one run is. draw() picks a level and then each knob within
// the level's range, so some seeds are calm and some harsh.
struct SimFaultProfile {
  std::string level = "calm";  // calm, mild, moderate, harsh or crashy (for reports)

  // --- node-to-node network ---
  std::uint32_t min_latency_us = 200;
  std::uint32_t max_latency_us = 2'000;
  double drop_probability = 0;
  double duplicate_probability = 0;
  // A message delayed by up to long_delay_max_us on top (heavy reordering).
  double long_delay_probability = 0;
  std::uint32_t long_delay_max_us = 300'000;

  // --- client links (requests and replies) ---
  double client_drop_probability = 0;

  // --- the nemesis: one fault action every [min, max] ms; 0 = none ---
  std::uint32_t nemesis_min_interval_ms = 0;
  std::uint32_t nemesis_max_interval_ms = 0;
  // Relative weights of the actions.
  std::uint32_t partition_weight = 0;        // random two-sided split
  std::uint32_t one_way_weight = 0;          // random one-way link cuts
  std::uint32_t isolate_leader_weight = 0;   // the leader alone
  std::uint32_t rolling_clog_weight = 0;     // clog and unclog nodes one by one
  std::uint32_t crash_weight = 0;            // crash a node, restart it later
  std::uint32_t disk_fault_weight = 0;       // the next fsync of a node fails
  std::uint32_t transfer_weight = 0;         // leadership transfer
  std::uint32_t membership_weight = 0;       // a voter becomes a learner or back
  std::uint32_t skew_weight = 0;             // redraw a node's tick-rate drift
  std::uint32_t heal_weight = 0;             // heal the network at once
  // Take a member out, wipe its disk and add it back, empty, as a learner
  // under the same id (a shard replica that moved away and moves back).
  // Never drawn: SimOptions::rejoin_weight turns it on.
  std::uint32_t rejoin_weight = 0;
  // How long a partition or a clog lasts, and a crashed node stays down.
  std::uint32_t fault_min_ms = 100;
  std::uint32_t fault_max_ms = 2'000;
  std::uint32_t down_min_ms = 50;
  std::uint32_t down_max_ms = 3'000;
  // A crash keeps a random prefix of each file's unsynced tail.
  double torn_tail_probability = 0;
  // Crashed (or failed) nodes at once; more crash actions are skipped.
  std::uint32_t max_down_nodes = 1;

  // --- clocks: each node's tick period is tick_ms * (1 + d), |d| <= this.
  // At most 0.04, which keeps lease reads within lease_drift_ticks
  // (docs/simulation.md works the bound out). ---
  double max_clock_skew = 0;

  // --- disks: the latency of each persisted Ready (write + fsync) ---
  std::uint32_t disk_min_latency_us = 100;
  std::uint32_t disk_max_latency_us = 1'000;
  double slow_disk_probability = 0;
  std::uint32_t slow_disk_latency_us = 50'000;

  static SimFaultProfile calm();
  static SimFaultProfile harsh();
  // Frequent short crashes during long fsyncs, little else.
  static SimFaultProfile crashy();
  static SimFaultProfile draw(Rng& rng);
  // One line: the level and the knobs that are on.
  std::string describe() const;
};

// Deliberate bugs in the simulated node runtime, for tests that prove the
// simulator's checks catch what they should. Never set outside such tests.
enum class SimRuntimeBug : std::uint8_t {
  kNone = 0,
  // Responses (votes, append acknowledgements) leave before the fsync.
  kAckBeforePersist = 1,
  // Reads are served from the local state machine at once, skipping
  // read_index: stale reads.
  kLocalReads = 2,
  // A member wiped and added back (rejoin_weight) votes, and restores a
  // snapshot naming it a voter, as if it had never left: RaftConfig's
  // unconfigured_votes and members_join_as_learners left at the library's
  // defaults.
  kUnguardedRejoin = 3,
};

// The host's handle on a running simulation, passed to SimOptions::on_start
// and on_step and to the actions given to schedule(). Only valid during
// those calls (it is the simulator itself); never keep it.
//
// Nodes are numbered 0 .. node_count() - 1 and named n1 .. nN. Everything a
// host does through this handle happens at the current simulated time, is
// recorded in the trace (and its hash) and is as deterministic as the rest
// of the run: a host that draws its choices from its own Rng, seeded from
// SimOptions::seed, replays with the run.
//
// Thread safety: none; called on the simulation's thread only.
class SimControl {
 public:
  // Simulated microseconds since the start of the run.
  virtual std::uint64_t now_us() const = 0;
  virtual std::uint32_t node_count() const = 0;
  // Precondition (all node arguments below): node < node_count().
  virtual const NodeId& node_id(std::uint32_t node) const = 0;
  // The node whose id is `id`, if any.
  virtual std::optional<std::uint32_t> node_index(const NodeId& id) const = 0;
  // A read-only view of the node's engine (role, term, leader, log): nullptr
  // while the node is down. Valid until the host's call returns.
  virtual const RaftEngine* engine(std::uint32_t node) const = 0;

  // Power loss now: the node's memory is gone and its disk keeps what was
  // synced (unsynced tails are dropped whole, never torn). Messages it sent
  // before still arrive; messages to it are lost. No-op while it is down.
  // The node stays down until restart(), or until the healing at the end of
  // the faulty phase restarts every node.
  virtual void crash(std::uint32_t node) = 0;
  // Reopens a crashed node from its disk now. No-op while it is up.
  virtual void restart(std::uint32_t node) = 0;
  // The node starts an election now (RaftEngine::campaign: pre-vote first
  // when configured). kUnavailable while it is down; kInvalidArgument when
  // it is not a voter.
  virtual Status campaign(std::uint32_t node) = 0;

  // Runs `action` at simulated time `at_us` (>= now_us()), after the events
  // already scheduled for that instant. At most kMaxHostActions wait at once
  // (a programmer error beyond it: NN_ASSERT). Actions still waiting when
  // the run ends never run.
  static constexpr std::size_t kMaxHostActions = 1u << 16;
  virtual void schedule(std::uint64_t at_us, std::function<void(SimControl&)> action) = 0;
  // Ends the run after the current event: no healing and no settling
  // follow. The Raft invariants were checked after every event up to here
  // and a violation still fails the run; the history recorded so far is
  // still checked for linearizability (operations left open count as
  // unknown). Convergence, the replicas' equality and the workload's
  // check_final are skipped: they describe a healed, finished run.
  // SimResult::stopped tells the host it happened.
  virtual void stop() = 0;

 protected:
  virtual ~SimControl() = default;
};

struct SimOptions {
  std::uint64_t seed = 1;
  // 1 to 7 (anything else is a programmer error: NN_ASSERT); 3 and 5 are
  // the interesting ones.
  std::uint32_t node_count = 3;

  // The faulty phase lasts this much simulated time, or max_steps events
  // (0 = no cap), whichever comes first.
  std::uint64_t duration_ms = 20'000;
  std::uint64_t max_steps = 0;
  // After healing, the cluster must converge (a leader, every node applied
  // its commit, the same data everywhere) within this much simulated time.
  std::uint64_t settle_ms = 30'000;
  // A run that processes more events than this in all fails as an event
  // storm (a livelock: messages bouncing without progress). 0: 20 events
  // per simulated millisecond of duration_ms + settle_ms, several times what
  // a busy run needs.
  std::uint64_t max_total_steps = 0;

  std::uint32_t client_count = 4;
  // A client gives an operation up (unknown or fail) after this long.
  std::uint32_t op_timeout_ms = 2'000;
  // Nominal tick period of every node (before clock skew); at least 1.
  std::uint32_t tick_ms = 10;

  // None: drawn from the seed (SimFaultProfile::draw).
  std::optional<SimFaultProfile> faults;
  // None: drawn from the seed (timeouts, pre-vote, check-quorum, read mode,
  // small flow-control and snapshot-chunk bounds). The id is set per node.
  std::optional<RaftConfig> raft;
  // None: make_random_kv_workload() with a key count drawn from the seed.
  std::function<std::unique_ptr<SimWorkload>()> workload;

  bool check_linearizability = true;
  std::uint64_t checker_max_states_per_key = 200'000;

  SimRuntimeBug runtime_bug = SimRuntimeBug::kNone;
  // Added to the profile's rejoin_weight after it is drawn (so a seed's
  // other draws stay as they were), when the profile has a nemesis.
  std::uint32_t rejoin_weight = 0;

  // Events kept for the failure report.
  std::size_t trace_tail_events = 50;
  // Called with every event as one line, as it happens (debugging a seed).
  std::function<void(std::string_view line)> on_event;

  // --- the host's hook (SimControl above); unset, a run is unchanged ---
  // Once, at simulated time 0, after the nodes were built and before the
  // first event (e.g. to schedule() the scenario's actions).
  std::function<void(SimControl&)> on_start;
  // After every event of the run (faulty phase and settling), once the
  // invariants were checked: to watch the cluster and react to it.
  std::function<void(SimControl&)> on_step;
};

struct SimStats {
  std::uint64_t steps = 0;  // events processed, faulty phase and settling
  std::uint64_t simulated_ms = 0;
  std::uint64_t messages_sent = 0;
  std::uint64_t messages_delivered = 0;
  std::uint64_t messages_dropped = 0;
  std::uint64_t messages_duplicated = 0;
  std::uint64_t crashes = 0;
  std::uint64_t torn_crashes = 0;
  std::uint64_t crashes_mid_write = 0;  // with a Ready's write in flight
  std::uint64_t disk_faults = 0;
  std::uint64_t partitions = 0;        // partitions, one-way cuts, isolations
  std::uint64_t clogs = 0;
  std::uint64_t transfers = 0;
  std::uint64_t conf_changes = 0;
  std::uint64_t rejoins = 0;           // members wiped and added back
  std::uint64_t leaders_elected = 0;   // distinct (term, leader) pairs seen
  std::uint64_t max_term = 0;
  std::uint64_t max_commit = 0;
  std::uint64_t compactions = 0;
  std::uint64_t snapshots_installed = 0;
  std::uint64_t ops_ok = 0;
  std::uint64_t ops_fail = 0;
  std::uint64_t ops_unknown = 0;
  std::uint64_t checker_states = 0;
};

struct SimResult {
  std::uint64_t seed = 0;
  std::uint32_t node_count = 0;
  bool passed = false;
  std::string failure;  // empty when passed
  // The history's verdict; kOk also when the check was switched off.
  Verdict verdict = Verdict::kOk;
  // The host ended the run early (SimControl::stop()): the end-of-run
  // checks other than the history's were skipped.
  bool stopped = false;
  std::uint64_t trace_hash = 0;
  std::vector<std::string> trace_tail;  // the last events, oldest first
  std::string fault_summary;            // SimFaultProfile::describe()
  std::string raft_summary;             // the drawn RaftConfig, one line
  SimStats stats;

  // One JSON object on one line (no trailing newline).
  std::string to_json() const;
  // Seed, failure, profile and the trace tail, for a human.
  std::string report() const;
};

SimResult run_simulation(const SimOptions& options);

}  // namespace nodenomad::testing
