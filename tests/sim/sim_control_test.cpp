// The host's hook into a simulation (SimControl): acting at a scheduled
// simulated time, watching the cluster after every event, crashing and
// restarting nodes, and ending a run early, all replayable from the seed.
#include <catch2/catch.hpp>
#include <fmt/format.h>

#include <cstdio>
#include <optional>

#include "nodenomad/logging.hpp"
#include "nodenomad/raft/raft_engine.hpp"
#include "nodenomad/testing/simulator.hpp"

namespace nodenomad::testing {
namespace {

void quiet_logs() {
  set_log_sink([](LogLevel, std::string_view, std::string_view) {});
}

SimResult run_printed(const SimOptions& options) {
  quiet_logs();
  fmt::print("[sim_control] seed {} nodes {}\n", options.seed, options.node_count);
  std::fflush(stdout);
  SimResult result = run_simulation(options);
  if (!result.passed) fmt::print("{}", result.report());
  return result;
}

// The node that leads and that every running node follows in its term.
std::optional<std::uint32_t> known_leader(const SimControl& control) {
  std::optional<std::uint32_t> leader;
  for (std::uint32_t i = 0; i < control.node_count(); ++i) {
    const RaftEngine* e = control.engine(i);
    if (e != nullptr && e->role() == RaftRole::kLeader) leader = i;
  }
  if (!leader) return std::nullopt;
  const RaftEngine& l = *control.engine(*leader);
  for (std::uint32_t i = 0; i < control.node_count(); ++i) {
    const RaftEngine* e = control.engine(i);
    if (e != nullptr && (e->term() != l.term() || e->leader() != l.id())) return std::nullopt;
  }
  return leader;
}

// What the leader-crash scenario saw.
struct Failover {
  std::optional<std::uint32_t> crashed;
  std::uint64_t crashed_term = 0;
  std::uint64_t crash_scheduled_us = 0;
  std::uint64_t crash_ran_us = 0;
  std::optional<std::uint32_t> new_leader;
  std::uint64_t new_term = 0;
  std::uint64_t stopped_at_us = 0;
};

// Once a leader is known to all, crash it 40 ms later; stop once another
// node leads a newer term and every survivor knows it.
SimOptions leader_crash_scenario(std::uint64_t seed, Failover& seen) {
  SimOptions options;
  options.seed = seed;
  options.node_count = 5;
  options.faults = SimFaultProfile::calm();
  options.duration_ms = 20'000;
  options.on_step = [&seen](SimControl& control) {
    const std::optional<std::uint32_t> leader = known_leader(control);
    if (!seen.crashed && seen.crash_scheduled_us == 0 && leader) {
      seen.crash_scheduled_us = control.now_us() + 40'000;
      control.schedule(seen.crash_scheduled_us, [&seen](SimControl& c) {
        seen.crash_ran_us = c.now_us();
        const std::optional<std::uint32_t> now_leading = known_leader(c);
        REQUIRE(now_leading.has_value());
        seen.crashed = now_leading;
        seen.crashed_term = c.engine(*now_leading)->term().value();
        c.crash(*now_leading);
        CHECK(c.engine(*now_leading) == nullptr);
      });
    }
    if (seen.crashed && leader && control.engine(*leader)->term().value() > seen.crashed_term) {
      seen.new_leader = leader;
      seen.new_term = control.engine(*leader)->term().value();
      seen.stopped_at_us = control.now_us();
      control.stop();
    }
  };
  return options;
}

TEST_CASE("the host crashes the leader at a chosen time and a newer leader takes over",
          "[sim][control]") {
  Failover seen;
  const SimResult result = run_printed(leader_crash_scenario(21, seen));
  INFO(result.report());
  REQUIRE(result.passed);
  CHECK(result.stopped);
  REQUIRE(seen.crashed.has_value());
  CHECK(seen.crash_ran_us == seen.crash_scheduled_us);
  REQUIRE(seen.new_leader.has_value());
  CHECK(*seen.new_leader != *seen.crashed);
  CHECK(seen.new_term > seen.crashed_term);
  CHECK(result.stats.crashes == 1);
  // stop() ended the run after that event: no healing, no settling.
  CHECK(result.stats.simulated_ms == seen.stopped_at_us / 1000);
  CHECK(result.stats.simulated_ms < 20'000);
  // The clients' history so far was still checked.
  CHECK(result.verdict == Verdict::kOk);
  CHECK(result.to_json().find("\"stopped\":true") != std::string::npos);

  // The scenario replays bit for bit from its seed; another seed differs.
  Failover again_seen;
  const SimResult again = run_printed(leader_crash_scenario(21, again_seen));
  CHECK(again.trace_hash == result.trace_hash);
  CHECK(again.stats.steps == result.stats.steps);
  CHECK(again_seen.stopped_at_us == seen.stopped_at_us);
  Failover other_seen;
  const SimResult other = run_printed(leader_crash_scenario(22, other_seen));
  CHECK(other.passed);
  CHECK(other.trace_hash != result.trace_hash);
}

TEST_CASE("a node the host crashed and restarted follows the new leader", "[sim][control]") {
  SimOptions options;
  options.seed = 3;
  options.node_count = 3;
  options.faults = SimFaultProfile::calm();
  options.duration_ms = 20'000;
  bool restarted = false;
  options.on_start = [&restarted](SimControl& control) {
    control.schedule(1'000'000, [](SimControl& c) {
      for (std::uint32_t i = 0; i < c.node_count(); ++i) {
        const RaftEngine* e = c.engine(i);
        if (e != nullptr && e->role() == RaftRole::kLeader) c.crash(i);
      }
    });
    control.schedule(1'500'000, [&restarted](SimControl& c) {
      for (std::uint32_t i = 0; i < c.node_count(); ++i) {
        if (c.engine(i) == nullptr) {
          c.restart(i);
          REQUIRE(c.engine(i) != nullptr);
          restarted = true;
        }
      }
    });
  };
  options.on_step = [&restarted](SimControl& control) {
    if (!restarted) return;
    for (std::uint32_t i = 0; i < control.node_count(); ++i) {
      if (control.engine(i) == nullptr) return;
    }
    if (known_leader(control)) control.stop();
  };
  const SimResult result = run_printed(options);
  INFO(result.report());
  REQUIRE(result.passed);
  CHECK(restarted);
  CHECK(result.stopped);
  CHECK(result.stats.crashes == 1);
  CHECK(result.stats.simulated_ms < 3'000);
}

// The setup of benchmarks/raft_failover_bench: no clients, no faults, no
// clock skew, a chosen network and disk latency, 1 ms ticks, and the
// election started by the host.
TEST_CASE("a quiet cluster with 1 ms ticks elects the node the host asked", "[sim][control]") {
  SimOptions options;
  options.seed = 9;
  options.node_count = 5;
  options.client_count = 0;
  options.tick_ms = 1;
  options.duration_ms = 10'000;
  SimFaultProfile quiet = SimFaultProfile::calm();
  quiet.min_latency_us = 6'000;
  quiet.max_latency_us = 9'000;
  quiet.disk_min_latency_us = 0;
  quiet.disk_max_latency_us = 0;
  options.faults = quiet;
  RaftConfig raft;
  raft.election_timeout_ticks = 150;
  raft.election_timeout_max_ticks = 300;
  raft.heartbeat_interval_ticks = 75;
  options.raft = raft;
  options.on_start = [](SimControl& control) {
    CHECK(control.node_count() == 5);
    CHECK(control.node_id(0) == NodeId("n1"));
    CHECK(control.node_index(NodeId("n3")) == std::optional<std::uint32_t>(2));
    CHECK(control.campaign(0).is_ok());
  };
  std::uint64_t elected_us = 0;
  options.on_step = [&elected_us](SimControl& control) {
    if (known_leader(control) == std::optional<std::uint32_t>(0)) {
      elected_us = control.now_us();
      control.stop();
    }
  };
  const SimResult result = run_printed(options);
  INFO(result.report());
  REQUIRE(result.passed);
  CHECK(result.stopped);
  // Pre-vote and vote, each a round trip of 12-18 ms, then a heartbeat.
  CHECK(elected_us >= 30'000);
  CHECK(elected_us < 100'000);
  CHECK(result.stats.ops_ok + result.stats.ops_fail + result.stats.ops_unknown == 0);
}

TEST_CASE("on_step sees every event and, unused, changes nothing", "[sim][control]") {
  SimOptions options;
  options.seed = 4;
  options.node_count = 3;
  options.duration_ms = 2'000;
  const SimResult plain = run_printed(options);
  std::uint64_t steps = 0;
  options.on_start = [](SimControl&) {};
  options.on_step = [&steps](SimControl&) { ++steps; };
  const SimResult watched = run_printed(options);
  INFO(watched.report());
  CHECK(watched.passed == plain.passed);
  CHECK_FALSE(watched.stopped);
  CHECK(watched.trace_hash == plain.trace_hash);
  CHECK(steps == watched.stats.steps);
}

TEST_CASE("stop() while the cluster settles skips the end-state checks", "[sim][control]") {
  SimOptions options;
  options.seed = 6;
  options.node_count = 5;
  options.faults = SimFaultProfile::harsh();
  options.duration_ms = 2'000;
  options.on_step = [](SimControl& control) {
    if (control.now_us() > 2'000'000) control.stop();  // just after the healing
  };
  const SimResult result = run_printed(options);
  INFO(result.report());
  CHECK(result.passed);
  CHECK(result.stopped);
  CHECK(result.stats.simulated_ms < 2'100);
}

TEST_CASE("stop() in on_start ends the run before its first event", "[sim][control]") {
  SimOptions options;
  options.seed = 1;
  options.on_start = [](SimControl& control) { control.stop(); };
  const SimResult result = run_printed(options);
  CHECK(result.passed);
  CHECK(result.stopped);
  CHECK(result.stats.steps == 0);
  CHECK(result.stats.simulated_ms == 0);
}

}  // namespace
}  // namespace nodenomad::testing
