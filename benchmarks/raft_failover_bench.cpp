// raft_failover_bench: the Raft paper's leader-crash experiment (Ongaro and
// Ousterhout, "In Search of an Understandable Consensus Algorithm", section
// 9.3, figure 16), run on the whole-cluster simulator
// (nodenomad/testing/simulator.hpp) through its host hook, SimControl.
//
//   raft_failover_bench [--nodes N] [--broadcast-ms MS] [--latency-jitter F]
//                       [--ranges LO-HI,LO-HI,...] [--trials N]
//                       [--heartbeat-ms MS] [--disk-ms MS] [--seed N]
//                       [--max-trial-ms MS] [--modes both|prevote|paper]
//                       [--trial I | --trace-trial I] [--quick]
//
// Each trial is one simulation of --nodes nodes (RaftEngine, FileLogStore
// and StorageEngine each, on simulated disks), with no clients and no
// faults but the one the host injects: n1 is asked to campaign at time 0;
// once every node follows it, it leads for two heartbeat intervals and is
// crashed at a uniformly random point of the next one. The downtime is the
// simulated time from the crash until one surviving node leads a newer term
// and every surviving node knows it as its leader (docs/benchmarks.md
// defines it precisely). The heartbeat interval is half the range's lowest
// timeout, as in the paper, unless --heartbeat-ms says otherwise.
//
// The network: every message takes its own one-way latency, drawn uniformly
// from broadcast/2 * [1 - jitter, 1 + jitter] (the simulator's latency
// range), so a request and its reply take --broadcast-ms on average (the
// paper's broadcast time, ~15 ms). A Ready that must be synced holds its
// responses for --disk-ms (default 0), drawn with the same jitter, while the
// node goes on ticking and receiving. Nodes tick every 1 ms of simulated
// time (timeouts in ticks are in ms), each at its own random phase.
//
// Seeds: trial i of every (mode, range) runs the simulation seeded with
// trial_seed(--seed, i) (printed by --trial), and the crash point is drawn
// from a stream derived from that seed, so `--trial i` with the same other
// flags replays one trial exactly and prints its figures and trace hash
// (`--trace-trial i` also prints every event of it on stderr).
//
// Modes: "prevote" runs with pre-vote and check-quorum on (NodeNomad's
// defaults); "paper" runs the paper's algorithm without them.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

// GCC 12 at -O3 reports a false -Wrestrict in the std::string copies of
// bench_common.hpp's Flags constructor (GCC bug 105329; -O2 is clean).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
#include "bench_common.hpp"
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
#include "nodenomad/raft/raft_engine.hpp"
#include "nodenomad/rng.hpp"
#include "nodenomad/testing/simulator.hpp"

namespace nodenomad::failover_bench {
namespace {

using bench::check;
using bench::fail;
using bench::Flags;
using bench::JsonLine;
using testing::SimControl;
using testing::SimOptions;
using testing::SimResult;

constexpr std::uint64_t kMicrosPerMs = 1000;

struct TimeoutRange {
  std::uint32_t lo_ms = 0;
  std::uint32_t hi_ms = 0;
};

struct Mode {
  std::string name;
  bool pre_vote = true;
  bool check_quorum = true;
};

struct Options {
  std::uint32_t nodes = 5;
  double broadcast_ms = 15;
  double latency_jitter = 0.2;
  std::vector<TimeoutRange> ranges;
  std::uint64_t trials = 0;
  double heartbeat_ms = 0;  // 0: half the range's lowest timeout
  double disk_ms = 0;
  std::uint64_t seed = 0;
  std::uint64_t max_trial_ms = 0;
  std::vector<Mode> modes;
  std::optional<std::uint64_t> only_trial;  // --trial: replay this one
  bool trace = false;                       // --trace-trial: and print its events
};

std::vector<TimeoutRange> parse_ranges(const std::string& text) {
  std::vector<TimeoutRange> out;
  std::size_t pos = 0;
  while (pos <= text.size()) {
    const std::size_t comma = std::min(text.find(',', pos), text.size());
    const std::string item = text.substr(pos, comma - pos);
    char* end = nullptr;
    const unsigned long lo = std::strtoul(item.c_str(), &end, 10);
    unsigned long hi = 0;
    const bool dash = *end == '-';
    if (dash) hi = std::strtoul(end + 1, &end, 10);
    if (item.empty() || !dash || *end != '\0' || lo == 0 || hi < lo || hi > 1'000'000) {
      Flags::usage_error(fmt::format(
          "--ranges takes LO-HI,... in whole ms with 0 < LO <= HI; got '{}'", item));
    }
    out.push_back({static_cast<std::uint32_t>(lo), static_cast<std::uint32_t>(hi)});
    pos = comma + 1;
  }
  return out;
}

Options parse_options(int argc, char** argv) {
  const Flags flags(argc, argv,
                    {"nodes", "broadcast-ms", "latency-jitter", "ranges", "trials",
                     "heartbeat-ms", "disk-ms", "seed", "max-trial-ms", "modes", "trial",
                     "trace-trial"});
  Options o;
  o.nodes = static_cast<std::uint32_t>(flags.number("nodes", 5, 5));
  o.broadcast_ms = flags.real("broadcast-ms", 15, 15);
  o.latency_jitter = flags.real("latency-jitter", 0.2, 0.2);
  o.disk_ms = flags.real("disk-ms", 0, 0);
  o.ranges = parse_ranges(
      flags.text("ranges", "150-150,150-151,150-155,150-175,150-200,150-300,12-24"));
  o.trials = flags.number("trials", 1000, 10);
  o.heartbeat_ms = flags.real("heartbeat-ms", 0, 0);
  o.seed = flags.number("seed", 20240611, 20240611);
  o.max_trial_ms = flags.number("max-trial-ms", 30'000, 5'000);
  if (flags.has("trial")) o.only_trial = flags.number("trial", 0, 0);
  if (flags.has("trace-trial")) {
    o.only_trial = flags.number("trace-trial", 0, 0);
    o.trace = true;
  }
  const std::string modes = flags.text("modes", "both");
  if (modes == "both" || modes == "prevote") o.modes.push_back({"prevote", true, true});
  if (modes == "both" || modes == "paper") o.modes.push_back({"paper", false, false});
  if (o.modes.empty()) Flags::usage_error("--modes takes both, prevote or paper");
  if (o.nodes < 2 || o.nodes > 7 || o.trials == 0 || o.latency_jitter > 1 ||
      o.max_trial_ms == 0 || (flags.has("trial") && flags.has("trace-trial"))) {
    Flags::usage_error("need --nodes in [2, 7] (the simulator's bound), --trials > 0, "
                       "--latency-jitter in [0, 1], --max-trial-ms > 0, and at most one of "
                       "--trial and --trace-trial");
  }
  return o;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

// The simulation seed of trial `trial`: the same in every mode and range, so
// a trial replays with --trial whatever else was run alongside it.
std::uint64_t trial_seed(std::uint64_t seed, std::uint64_t trial) {
  return splitmix64(seed ^ splitmix64(trial));
}

std::uint32_t round_u32(double value) { return static_cast<std::uint32_t>(std::llround(value)); }

// Everything a (mode, range) runs with; each trial adds its seed and hooks.
struct RangeSetup {
  SimOptions sim;
  std::uint64_t heartbeat_us = 0;
  std::uint64_t max_trial_us = 0;
};

RangeSetup range_setup(const Options& o, const Mode& mode, const TimeoutRange& range) {
  RangeSetup s;
  RaftConfig raft;
  raft.pre_vote = mode.pre_vote;
  raft.check_quorum = mode.check_quorum;
  raft.election_timeout_ticks = range.lo_ms;  // 1 tick = 1 ms
  raft.election_timeout_max_ticks = range.hi_ms;
  const double heartbeat_ms = o.heartbeat_ms > 0 ? o.heartbeat_ms : range.lo_ms / 2.0;
  raft.heartbeat_interval_ticks = std::max<std::uint32_t>(1, round_u32(heartbeat_ms));
  RaftConfig checked = raft;
  checked.id = NodeId("n1");
  check(validate_raft_config(checked), fmt::format("the range {}-{} ms", range.lo_ms, range.hi_ms));
  testing::SimFaultProfile quiet = testing::SimFaultProfile::calm();
  const double one_way_us = o.broadcast_ms * 1000.0 / 2;
  quiet.min_latency_us = round_u32(one_way_us * (1 - o.latency_jitter));
  quiet.max_latency_us = round_u32(one_way_us * (1 + o.latency_jitter));
  quiet.disk_min_latency_us = round_u32(o.disk_ms * 1000.0 * (1 - o.latency_jitter));
  quiet.disk_max_latency_us = round_u32(o.disk_ms * 1000.0 * (1 + o.latency_jitter));
  s.heartbeat_us = raft.heartbeat_interval_ticks * kMicrosPerMs;
  s.max_trial_us = o.max_trial_ms * kMicrosPerMs;
  s.sim.node_count = o.nodes;
  s.sim.client_count = 0;
  s.sim.tick_ms = 1;
  s.sim.faults = quiet;
  s.sim.raft = raft;
  s.sim.check_linearizability = false;  // no clients, no history
  // A safety net only: every trial stops itself (booting, waiting for the
  // crash and the failover are each bounded by --max-trial-ms).
  s.sim.duration_ms = 3 * o.max_trial_ms + 3 * s.heartbeat_us / kMicrosPerMs + 1'000;
  return s;
}

struct TrialResult {
  std::uint64_t sim_seed = 0;
  bool converged = false;
  double downtime_ms = 0;       // crash -> new leader known to every survivor
  double elected_ms = 0;        // crash -> a survivor wins an election
  std::uint64_t elections = 0;  // terms the survivors went through
  SimResult sim;
};

// One trial's scenario, run by the simulator's hook: elect n1, crash the
// leader at a random point of its third heartbeat interval, watch the
// survivors until they agree on a newer leader.
class FailoverScenario {
 public:
  FailoverScenario(const RangeSetup& setup, std::uint64_t sim_seed)
      : setup_(setup), rng_(splitmix64(sim_seed)) {}

  void on_start(SimControl& c) { check(c.campaign(0), "n1 campaigns"); }

  void on_step(SimControl& c) {
    switch (phase_) {
      case Phase::kBooting: return boot(c);
      case Phase::kLeading: return;  // the scheduled crash moves on
      case Phase::kCrashDue: return crash_leader(c);
      case Phase::kDown: return watch_failover(c);
      case Phase::kDone: return;
    }
  }

  // Fills in the trial's figures; `sim` is the finished simulation.
  TrialResult result(SimResult sim) const {
    TrialResult r;
    r.converged = converged_;
    r.downtime_ms = static_cast<double>(end_us_ - crash_us_) / 1000.0;
    r.elected_ms = static_cast<double>((elected_us_ == 0 ? end_us_ : elected_us_) - crash_us_) /
                   1000.0;
    r.elections = newest_term_ - crashed_term_;
    r.sim = std::move(sim);
    return r;
  }

 private:
  enum class Phase { kBooting, kLeading, kCrashDue, kDown, kDone };

  // The live leader of the highest term.
  static std::optional<std::uint32_t> highest_leader(const SimControl& c) {
    std::optional<std::uint32_t> best;
    for (std::uint32_t i = 0; i < c.node_count(); ++i) {
      const RaftEngine* e = c.engine(i);
      if (e == nullptr || e->role() != RaftRole::kLeader) continue;
      if (!best || e->term() > c.engine(*best)->term()) best = i;
    }
    return best;
  }

  // The live leader that every live node follows in its term.
  static std::optional<std::uint32_t> known_leader(const SimControl& c) {
    const std::optional<std::uint32_t> leader = highest_leader(c);
    if (!leader) return std::nullopt;
    const RaftEngine& l = *c.engine(*leader);
    for (std::uint32_t i = 0; i < c.node_count(); ++i) {
      const RaftEngine* e = c.engine(i);
      if (e != nullptr && (e->term() != l.term() || e->leader() != l.id())) return std::nullopt;
    }
    return leader;
  }

  void boot(SimControl& c) {
    if (c.now_us() > setup_.max_trial_us) fail("the first leader was never established");
    if (!known_leader(c)) return;
    // Two heartbeat intervals of steady leadership, then a crash at a
    // uniformly random point of the next one.
    phase_ = Phase::kLeading;
    crash_due_us_ = c.now_us() + 2 * setup_.heartbeat_us + rng_.uniform(setup_.heartbeat_us);
    c.schedule(crash_due_us_, [this](SimControl& at) {
      phase_ = Phase::kCrashDue;
      crash_leader(at);
    });
  }

  // At the due time, or at the first leader after it if there was none.
  void crash_leader(SimControl& c) {
    if (c.now_us() > crash_due_us_ + setup_.max_trial_us) fail("no leader to crash");
    const std::optional<std::uint32_t> leader = highest_leader(c);
    if (!leader) return;
    crashed_term_ = newest_term_ = c.engine(*leader)->term().value();
    crash_us_ = c.now_us();
    c.crash(*leader);
    phase_ = Phase::kDown;
  }

  void watch_failover(SimControl& c) {
    for (std::uint32_t i = 0; i < c.node_count(); ++i) {
      if (const RaftEngine* e = c.engine(i)) newest_term_ = std::max(newest_term_, e->term().value());
    }
    const std::optional<std::uint32_t> leader = highest_leader(c);
    if (elected_us_ == 0 && leader && c.engine(*leader)->term().value() > crashed_term_) {
      elected_us_ = c.now_us();
    }
    const std::optional<std::uint32_t> known = known_leader(c);
    converged_ = known && c.engine(*known)->term().value() > crashed_term_;
    if (!converged_ && c.now_us() - crash_us_ < setup_.max_trial_us) return;
    // Not converged: counted at --max-trial-ms, as if checked right then.
    end_us_ = converged_ ? c.now_us() : crash_us_ + setup_.max_trial_us;
    phase_ = Phase::kDone;
    c.stop();
  }

  const RangeSetup& setup_;
  Rng rng_;  // the crash point; apart from the simulation's own streams
  Phase phase_ = Phase::kBooting;
  std::uint64_t crash_due_us_ = 0;
  std::uint64_t crash_us_ = 0;
  std::uint64_t crashed_term_ = 0;
  std::uint64_t newest_term_ = 0;
  std::uint64_t elected_us_ = 0;
  std::uint64_t end_us_ = 0;
  bool converged_ = false;
};

TrialResult run_trial(const RangeSetup& setup, std::uint64_t sim_seed, bool trace) {
  FailoverScenario scenario(setup, sim_seed);
  SimOptions options = setup.sim;
  options.seed = sim_seed;
  options.on_start = [&scenario](SimControl& c) { scenario.on_start(c); };
  options.on_step = [&scenario](SimControl& c) { scenario.on_step(c); };
  if (trace) {
    options.on_event = [](std::string_view line) {
      std::fprintf(stderr, "%.*s\n", static_cast<int>(line.size()), line.data());
    };
  }
  SimResult sim = testing::run_simulation(options);
  if (!sim.passed || !sim.stopped) {
    fail(fmt::format("trial with simulation seed {} {}:\n{}", sim_seed,
                     sim.passed ? "did not stop" : "failed", sim.report()));
  }
  TrialResult r = scenario.result(std::move(sim));
  r.sim_seed = sim_seed;
  return r;
}

// The fields every line starts with: what was run.
JsonLine describe(std::string_view bench, const Options& o, const Mode& mode,
                  const TimeoutRange& range, const RangeSetup& s) {
  const testing::SimFaultProfile& f = *s.sim.faults;
  JsonLine line(bench);
  line.add("mode", mode.name)
      .add("pre_vote", mode.pre_vote)
      .add("check_quorum", mode.check_quorum)
      .add("nodes", o.nodes)
      .add("timeout_range_ms", fmt::format("{}-{}", range.lo_ms, range.hi_ms))
      .add("heartbeat_ms", static_cast<double>(s.heartbeat_us) / 1000.0)
      .add("latency_ms", fmt::format("{}-{}", f.min_latency_us / 1000.0, f.max_latency_us / 1000.0))
      .add("disk_ms", fmt::format("{}-{}", f.disk_min_latency_us / 1000.0,
                                  f.disk_max_latency_us / 1000.0))
      .add("seed", o.seed);
  return line;
}

void replay_trial(const Options& o, const Mode& mode, const TimeoutRange& range) {
  const RangeSetup setup = range_setup(o, mode, range);
  const std::uint64_t trial = *o.only_trial;
  const TrialResult r = run_trial(setup, trial_seed(o.seed, trial), o.trace);
  describe("raft_failover_trial", o, mode, range, setup)
      .add("trial", trial)
      .add("sim_seed", fmt::format("{}", r.sim_seed))  // a string: past 2^53
      .add("converged", r.converged)
      .add("downtime_ms", r.downtime_ms)
      .add("elected_ms", r.elected_ms)
      .add("elections", r.elections)
      .add("steps", r.sim.stats.steps)
      .add("trace_hash", fmt::format("{:016x}", r.sim.trace_hash))
      .print();
}

void run_range(const Options& o, const Mode& mode, const TimeoutRange& range) {
  const RangeSetup setup = range_setup(o, mode, range);
  std::vector<double> downtime;
  std::vector<double> elected;
  std::uint64_t unconverged = 0;
  std::uint64_t elections = 0;
  std::uint64_t steps = 0;
  std::uint64_t slowest_trial = 0;
  double slowest_ms = -1;
  const bench::Stopwatch watch;
  for (std::uint64_t t = 0; t < o.trials; ++t) {
    const TrialResult r = run_trial(setup, trial_seed(o.seed, t), false);
    downtime.push_back(r.downtime_ms);
    elected.push_back(r.elected_ms);
    unconverged += r.converged ? 0 : 1;
    elections += r.elections;
    steps += r.sim.stats.steps;
    if (r.downtime_ms > slowest_ms) {
      slowest_ms = r.downtime_ms;
      slowest_trial = t;
    }
  }
  const bench::Summary d = bench::summarize(downtime);
  const bench::Summary e = bench::summarize(elected);
  describe("raft_failover", o, mode, range, setup)
      .add("trials", o.trials)
      .add("downtime_min_ms", d.min)
      .add("downtime_median_ms", d.median)
      .add("downtime_p99_ms", d.p99)
      .add("downtime_max_ms", d.max)
      .add("downtime_mean_ms", d.mean)
      .add("elected_median_ms", e.median)
      .add("elections_per_trial", static_cast<double>(elections) / static_cast<double>(o.trials))
      .add("unconverged", unconverged)
      .add("slowest_trial", slowest_trial)
      .add("sim_events", steps)
      .add("wall_seconds", watch.seconds())
      .print();
}

int run(int argc, char** argv) {
  const Options o = parse_options(argc, argv);
  bench::quiet_routine_logs();
  for (const Mode& mode : o.modes) {
    for (const TimeoutRange& range : o.ranges) {
      if (o.only_trial) {
        replay_trial(o, mode, range);
      } else {
        run_range(o, mode, range);
      }
    }
  }
  return 0;
}

}  // namespace
}  // namespace nodenomad::failover_bench

int main(int argc, char** argv) { return nodenomad::failover_bench::run(argc, argv); }
